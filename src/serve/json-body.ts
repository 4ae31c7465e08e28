/**
 * Where a request body stops being JSON. JSON.parse's messages do not always say where (V8 gives
 * "Unexpected token '}', "<the whole body>" is not valid JSON"), so after it fails this scanner walks
 * the text once more (RFC 8259) and reports the first offending character's line and column.
 */

export interface JsonSyntaxProblem {
  /** 0-based character offset. */
  offset: number;
  line: number;
  column: number;
  /** What is wrong there, e.g. `expected "," or "]" after a list item, found "}"`. */
  reason: string;
}

class Stop {
  constructor(readonly offset: number, readonly reason: string) {}
}

/** The first syntax problem of `s`, or null when it is valid JSON (or too deeply nested to scan). */
export function locateJsonError(s: string): JsonSyntaxProblem | null {
  let i = 0;
  const n = s.length;
  const show = (): string => (i >= n ? "the end of the body" : JSON.stringify(s[i]));
  const fail = (reason: string): never => {
    throw new Stop(i, reason);
  };
  const ws = () => {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail("a string is not closed (missing \")");
      const c = s.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c === 92) {
        const e = s[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) {
            i++;
            fail("\\u must be followed by 4 hex digits");
          }
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else {
          i++;
          fail(`invalid escape \\${e ?? ""} in a string`);
        }
        continue;
      }
      if (c < 32) fail("a raw control character (e.g. a line break) inside a string; write it as \\n");
      i++;
    }
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    ws();
    if (i >= n) fail("the body ends where a value should start");
    const c = s[i]!;
    if (c === "{") {
      i++;
      ws();
      if (s[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (s[i] !== '"') fail(`expected a key in double quotes, found ${show()}`);
        str();
        ws();
        if (s[i] !== ":") fail(`expected ":" after the key, found ${show()}`);
        i++;
        value();
        ws();
        if (s[i] === ",") {
          i++;
          continue;
        }
        if (s[i] === "}") {
          i++;
          return;
        }
        fail(`expected "," or "}" after a value in an object, found ${show()}`);
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (s[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (s[i] === ",") {
          i++;
          continue;
        }
        if (s[i] === "]") {
          i++;
          return;
        }
        fail(`expected "," or "]" after a list item, found ${show()}`);
      }
    }
    if (c === '"') return str();
    for (const lit of ["true", "false", "null"]) {
      if (s.startsWith(lit, i)) {
        i += lit.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(s);
    if (m && m[0] !== "" && m[0] !== "-") {
      i += m[0].length;
      return;
    }
    fail(c === "'" ? "strings need double quotes, found '" : `expected a value, found ${show()}`);
  };
  try {
    value();
    ws();
    if (i < n) fail(`unexpected ${show()} after the JSON value`);
    return null;
  } catch (e) {
    if (!(e instanceof Stop)) return null; // e.g. RangeError: nested too deeply to scan here
    let line = 1;
    let last = -1;
    for (let j = 0; j < e.offset && j < n; j++) {
      if (s.charCodeAt(j) === 10) {
        line++;
        last = j;
      }
    }
    return { offset: e.offset, line, column: e.offset - last, reason: e.reason };
  }
}
