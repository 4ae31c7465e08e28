/** The recipe format version this recblocks writes and understands. */
export const CURRENT_RECIPE_VERSION = 1;

/**
 * Upgrades from version n to n + 1, keyed by n. A migration gets a private copy of the plain document
 * and returns the upgraded one; it must not invent values the user did not write (defaults live in the
 * schema). None exist yet: version 1 is the first format.
 */
export const RECIPE_MIGRATIONS: Record<number, (doc: Record<string, unknown>) => Record<string, unknown>> = {};
