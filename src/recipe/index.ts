export { loadRecipe, checkRecipeFile, checkRecipeSource, validateRecipeText, type RecipeCheck, type RecipeOptions, type RecipeStage } from "./load.js";
export { SchemaSet, defaultSchemaSet, listMemberSchemas, type SchemaSetOptions } from "./schema-set.js";
export { CURRENT_RECIPE_VERSION, RECIPE_MIGRATIONS } from "./migrations.js";
export { buildIndexSchema, checkMemberSchema } from "./block-index.js";
export { walkSchema } from "./walk.js";
