// Tollgate's typings for login actions: what the sandbox provides and what each
// trigger passes to its handlers. Point a tsconfig.json or jsconfig.json at this
// file (tenants/tsconfig.json does) and put `// @ts-check` at the top of an
// action: editors then complete and check `event`, `api`, the globals and the
// modules `require()` accepts. New triggers add their file here.

/// <reference path="./sandbox.d.ts" />
/// <reference path="./post-login.d.ts" />
