import { accessSync, constants, realpathSync } from 'node:fs'
import { basename, delimiter, isAbsolute, join, relative, resolve } from 'node:path'

/**
 * How a person in this shell runs this very `coffer`, for commands the CLI prints (the server's
 * start-up banner, `coffer login`'s hints): `coffer` when the `coffer` that PATH finds is this
 * program; else the path of the installed `coffer` link it was started through; else
 * `node <path of bin/coffer.js>` (relative to the working directory when it lies inside it).
 * Never `npx coffer`: npx does not run a checkout's own bin; it looks for the name in the registry.
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
    if (realOrSelf(candidate) === self) return 'coffer'
    break
  }
  // Started through an installed `coffer` link that PATH does not reach: that link, by its path.
  const given = resolve(cwd, argv1)
  if (basename(given) === 'coffer') return shellWord(given)
  return nodeCommand(self, cwd)
}

function nodeCommand(script: string, cwd: string): string {
  const rel = relative(cwd, script)
  const shown = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : script
  return `node ${shellWord(shown)}`
}

function shellWord(s: string): string {
  return /^[\w./@+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}
