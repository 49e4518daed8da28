// Validate an AsyncAPI document with the official parser: node validate_asyncapi.mjs FILE
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.ASYNCAPI_PARSER_DIR + "/");
const { Parser } = require("@asyncapi/parser");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], "utf8"));
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.code}: ${d.message} at ${d.path.join(".")}`);
if (!document || errors.length) { console.log(`INVALID: ${errors.length} errors`); process.exit(1); }
console.log(`VALID asyncapi ${document.version()} channels=${document.channels().length} operations=${document.operations().length}`);
