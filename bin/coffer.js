#!/usr/bin/env node
// The `coffer` command: runs the bundled CLI (dist/, built by `npm run build`, which
// `npm install` runs too).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const bundle = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
if (!existsSync(bundle)) {
  process.stderr.write('coffer: the CLI is not built yet; run `npm run build` (or `npm install`) in the Coffer checkout.\n')
  process.exit(1)
}
await import(bundle)
