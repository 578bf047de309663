// Compiles a JSON Schema with Ajv's draft 2020-12 class in its default (strict) mode, formats from ajv-formats,
// and validates documents against it. Usage: node validate-events.mjs SCHEMA [DOCUMENT...]
// Prints one JSON line: {"warnings": [...], "results": [{"valid": bool, "errors": [...]}, ...]}; exits 1 when the
// schema does not compile. Warnings are collected rather than printed, so the caller can hold them to none.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [schemaPath, ...documentPaths] = process.argv.slice(2);
const warnings = [];
const collect = (...parts) => warnings.push(parts.join(" "));
const ajv = new Ajv2020({ logger: { log: collect, warn: collect, error: collect } });
addFormats(ajv);

let validate;
try {
  validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message), warnings }));
  process.exit(1);
}
const results = documentPaths.map((path) => {
  const valid = validate(JSON.parse(readFileSync(path, "utf8")));
  return { valid, errors: valid ? [] : validate.errors };
});
console.log(JSON.stringify({ warnings, results }));
