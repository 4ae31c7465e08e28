/** `node:module` in the browser bundle: `createRequire` gives a `require` that says it cannot load Node modules here. */
export function createRequire(from: string | URL): (id: string) => never {
  const req = (id: string): never => {
    throw new Error(`require("${id}") (from ${String(from)}) is not available in the browser build of recblocks`);
  };
  return Object.assign(req, { resolve: req });
}
