/**
 * tools/native-setup/setup.cjs on a fake tfjs-node folder (real scripts/deps-constants.js, fake
 * libraries): what it stages, the names tfjs-node's install script and binding look for, the status
 * it records, and its errors. The real build is exercised by `npm ci` (see docs/engine.md).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const setup = join(packageRoot(), "tools", "native-setup", "setup.cjs");
const work = mkdtempSync(join(tmpdir(), "recblocks-native-setup-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let realTfjsNode: string | undefined;
try {
  realTfjsNode = dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-node/package.json"));
} catch {
  realTfjsNode = undefined;
}

/** node_modules/@tensorflow/tfjs-node with package.json and scripts/deps-constants.js only. */
function fakeTfjsNode(name: string): string {
  const dir = join(work, name, "node_modules", "@tensorflow", "tfjs-node");
  mkdirSync(join(dir, "scripts"), { recursive: true });
  copyFileSync(join(realTfjsNode!, "package.json"), join(dir, "package.json"));
  copyFileSync(join(realTfjsNode!, "scripts", "deps-constants.js"), join(dir, "scripts", "deps-constants.js"));
  return dir;
}

/** A libtensorflow folder shaped like the TensorFlow wheel's (libtensorflow_cc.so.2 + framework + headers). */
function fakeLibFolder(name: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "lib"), { recursive: true });
  mkdirSync(join(dir, "include", "tensorflow", "c"), { recursive: true });
  writeFileSync(join(dir, "lib", "libtensorflow_cc.so.2"), "not really a library");
  writeFileSync(join(dir, "lib", "libtensorflow_framework.so.2"), "not really a library either");
  writeFileSync(join(dir, "include", "tensorflow", "c", "c_api.h"), "/* c api */\n");
  return dir;
}

function runSetup(args: string[], env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [setup, ...args], {
    encoding: "utf8",
    env: { ...process.env, RECBLOCKS_CACHE_DIR: join(work, "cache"), ...env },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!realTfjsNode)("tools/native-setup", () => {
  it("stages RECBLOCKS_LIBTENSORFLOW into deps/ with the names the binding and install script need", () => {
    const tf = fakeTfjsNode("a");
    const lib = fakeLibFolder("libtf-a");
    const r = runSetup(["--target", tf, "--no-build", "--json"], { RECBLOCKS_LIBTENSORFLOW: lib });
    expect(r.status, r.out).toBe(0);
    const status = JSON.parse(r.out.trim().split("\n").filter((l) => l.startsWith("{")).pop()!);
    expect(status.ok).toBe(true);
    expect(status.how).toContain("RECBLOCKS_LIBTENSORFLOW folder");
    const deps = join(tf, "deps", "lib");
    // -ltensorflow -> libtensorflow_cc; install.js checks libtensorflow.so.2.9.1.
    expect(readlinkSync(join(deps, "libtensorflow.so"))).toBe("libtensorflow_cc.so.2");
    expect(readlinkSync(join(deps, "libtensorflow_framework.so"))).toBe("libtensorflow_framework.so.2");
    expect(readlinkSync(join(deps, "libtensorflow.so.2.9.1"))).toBe("libtensorflow.so");
    expect(readFileSync(join(deps, "libtensorflow_cc.so.2"), "utf8")).toBe("not really a library");
    expect(lstatSync(join(deps, "libtensorflow_cc.so.2")).nlink).toBeGreaterThanOrEqual(2); // hard link, not a copy
    expect(existsSync(join(tf, "deps", "include", "tensorflow", "c", "c_api.h"))).toBe(true);
    const marker = JSON.parse(readFileSync(join(tf, "deps", "recblocks-native.json"), "utf8"));
    expect(marker.how).toContain(lib);
    const recorded = JSON.parse(readFileSync(join(work, "a", "node_modules", ".recblocks-native.json"), "utf8"));
    expect(recorded.ok).toBe(true);
  });

  it("extracts a TensorFlow wheel (zip) into the cache once and stages it", () => {
    const src = fakeLibFolder("wheel-src");
    const whl = join(work, "tensorflow_cpu-9.9.9-cp311-cp311-manylinux_2_27_x86_64.whl");
    const py = spawnSync("python3", ["-c", `
import zipfile, sys
src, whl = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl, "w") as z:
    z.write(src + "/lib/libtensorflow_cc.so.2", "tensorflow/libtensorflow_cc.so.2")
    z.write(src + "/lib/libtensorflow_framework.so.2", "tensorflow/libtensorflow_framework.so.2")
    z.write(src + "/include/tensorflow/c/c_api.h", "tensorflow/include/tensorflow/c/c_api.h")
    z.writestr("tensorflow/include/unsupported/big.h", "not needed")
`, src, whl]);
    expect(py.status, String(py.stderr)).toBe(0);
    const tf = fakeTfjsNode("b");
    const r = runSetup(["--target", tf, "--no-build"], { RECBLOCKS_LIBTENSORFLOW: whl });
    expect(r.status, r.out).toBe(0);
    expect(readlinkSync(join(tf, "deps", "lib", "libtensorflow.so"))).toBe("libtensorflow_cc.so.2");
    expect(existsSync(join(tf, "deps", "include", "tensorflow", "c", "c_api.h"))).toBe(true);
    expect(existsSync(join(tf, "deps", "include", "unsupported"))).toBe(false);
    expect(existsSync(join(work, "cache", "libtensorflow"))).toBe(true);
  });

  it("a bad RECBLOCKS_LIBTENSORFLOW fails by hand, but never fails an npm lifecycle, and says why", () => {
    const tf = fakeTfjsNode("c");
    const r = runSetup(["--target", tf, "--no-build"], { RECBLOCKS_LIBTENSORFLOW: join(work, "nowhere") });
    expect(r.status).toBe(1);
    expect(r.out).toContain("RECBLOCKS_LIBTENSORFLOW=");
    expect(r.out).toContain("no such file or folder");
    const empty = join(work, "empty-lib");
    mkdirSync(join(empty, "lib"), { recursive: true });
    const l = runSetup(["--target", tf, "--no-build", "--lifecycle"], { RECBLOCKS_LIBTENSORFLOW: empty });
    expect(l.status).toBe(0);
    const recorded = JSON.parse(readFileSync(join(work, "c", "node_modules", ".recblocks-native.json"), "utf8"));
    expect(recorded.ok).toBe(false);
    expect(recorded.how).toMatch(/no include\/tensorflow\/c\/c_api\.h/);
    expect(existsSync(join(tf, "deps"))).toBe(false);
  });

  it("RECBLOCKS_NATIVE=off does nothing and records it", () => {
    const tf = fakeTfjsNode("d");
    const r = runSetup(["--target", tf, "--lifecycle"], { RECBLOCKS_NATIVE: "off" });
    expect(r.status).toBe(0);
    expect(existsSync(join(tf, "deps"))).toBe(false);
    expect(readFileSync(join(work, "d", "node_modules", ".recblocks-native.json"), "utf8")).toContain("RECBLOCKS_NATIVE=off");
  });
});
