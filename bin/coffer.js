#!/usr/bin/env node
// The `coffer` command: runs the bundled CLI (dist/, built by `npm run build`, which
// `npm install` runs too).
//
// `coffer run` starts before every process it wraps, so it has a bundle of its own,
// dist/run.cjs: no commander, no command table, and CommonJS, like this file (bin/package.json
// says so) — an ES module entry costs Node ~5 ms more to load. It hands any command line it
// does not read itself to the full CLI, an ES module.
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { pathToFileURL } = require('node:url')

const dist = join(__dirname, '..', 'dist')
if (!existsSync(join(dist, 'cli.js')) || !existsSync(join(dist, 'run.cjs'))) {
  process.stderr.write('coffer: the CLI is not built yet; run `npm run build` (or `npm install`) in the Coffer checkout.\n')
  process.exit(1)
}
const fullCli = () => import(pathToFileURL(join(dist, 'cli.js')).href)
if (process.argv[2] === 'run') {
  require(join(dist, 'run.cjs'))
    .runFast(process.argv)
    .then((handled) => handled || fullCli())
} else fullCli()
