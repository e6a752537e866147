// Validate Teams app manifest(s) against the official JSON schema shipped (offline) by @microsoft/app-manifest.
//
//   node tests/e2e/validate_manifest.mjs <manifest.json> [more.json ...]
//
// The schema is picked from each manifest's "manifestVersion" (build/json-schemas/teams/v<version>/
// MicrosoftTeams.schema.json). Validation mirrors @microsoft/app-manifest's own ManifestUtil
// .validateManifestAgainstSchema (ajv-draft-04, allErrors, strictTypes off, formats uri/email/regex); that
// helper cannot be imported directly because the package's index requires fs-extra, which it does not depend on.
// Prints a JSON report {"ok", "newest_schema_version", "manifests": [{path, manifestVersion, schema, ok, errors}]}
// and exits 0 when all are valid, 1 otherwise, 2 on usage errors.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import Ajv04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';

const require = createRequire(import.meta.url);
const schemasDir = path.join(path.dirname(require.resolve('@microsoft/app-manifest/package.json')), 'build', 'json-schemas', 'teams');

const versions = fs.readdirSync(schemasDir)
  .filter((d) => /^v\d+\.\d+$/.test(d))
  .map((d) => d.slice(1))
  .sort((a, b) => {
    const [a1, a2] = a.split('.').map(Number);
    const [b1, b2] = b.split('.').map(Number);
    return a1 - b1 || a2 - b2;
  });

const files = process.argv.slice(2);
if (!files.length) {
  console.error('usage: validate_manifest.mjs <manifest.json> [...]');
  process.exit(2);
}
const report = { ok: true, schemas_dir: schemasDir, newest_schema_version: versions.at(-1), manifests: [] };
for (const file of files) {
  const entry = { path: path.resolve(file), manifestVersion: null, schema: null, ok: false, errors: [] };
  report.manifests.push(entry);
  try {
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
    entry.manifestVersion = manifest.manifestVersion;
    const schemaPath = path.join(schemasDir, `v${manifest.manifestVersion}`, 'MicrosoftTeams.schema.json');
    if (!fs.existsSync(schemaPath)) throw new Error(`no schema for manifestVersion ${JSON.stringify(manifest.manifestVersion)} in ${schemasDir}`);
    entry.schema = schemaPath;
    const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
    const ajv = new Ajv04({ allErrors: true, strictTypes: false });
    addFormats(ajv, ['uri', 'email', 'regex']);
    const validate = ajv.compile(schema);
    if (!validate(manifest)) {
      entry.errors = validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`);
    }
    const expected = `https://developer.microsoft.com/json-schemas/teams/v${manifest.manifestVersion}/MicrosoftTeams.schema.json`;
    if (manifest.$schema && manifest.$schema !== expected) entry.errors.push(`$schema is ${manifest.$schema}, expected ${expected}`);
  } catch (e) {
    entry.errors.push(String(e && e.message ? e.message : e));
  }
  entry.ok = entry.errors.length === 0;
  if (!entry.ok) report.ok = false;
}
console.log(JSON.stringify(report, null, 2));
process.exit(report.ok ? 0 : 1);
