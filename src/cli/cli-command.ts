import { accessSync, constants, realpathSync } from 'node:fs'
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path'

/**
 * How a person in this shell runs this very `coffer`, for commands the CLI prints (the server's
 * start-up banner, `coffer login --export`'s hints): `coffer` when the `coffer` that PATH
 * finds is this program, else `node <path of bin/coffer.js>` (relative to the working
 * directory when it lies inside it). Never `npx coffer`: outside an install, npx would fetch
 * an unrelated package of that name from the registry.
 */
export function cliCommand(argv1: string | undefined = process.argv[1], path = process.env.PATH ?? '', cwd = process.cwd()): string {
  if (!argv1) return 'coffer'
  const self = realOrSelf(resolve(cwd, argv1))
  for (const dir of path.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue
    const candidate = join(dir, 'coffer')
    try {
      accessSync(candidate, constants.X_OK)
    } catch {
      continue
    }
    // The first `coffer` on PATH is the one the shell runs: it is either us or another.
    return realOrSelf(candidate) === self ? 'coffer' : nodeCommand(self, cwd)
  }
  return nodeCommand(self, cwd)
}

function nodeCommand(script: string, cwd: string): string {
  const rel = relative(cwd, script)
  const shown = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : script
  return `node ${/^[\w./@+-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", `'\\''`)}'`}`
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}
