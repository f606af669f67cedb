import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ExitError } from './exit-error.js'

export const PROJECT_CONFIG_FILE = '.coffer.json'

/** What `coffer setup` links a directory to. It holds no secret. */
export interface ProjectConfig {
  workspace?: string
  project?: string
  environment?: string
  url?: string
}

/** The nearest .coffer.json in `cwd` or a parent, or null. */
export function findProjectConfig(cwd = process.cwd()): { path: string; config: ProjectConfig } | null {
  let dir = resolve(cwd)
  for (;;) {
    const path = join(dir, PROJECT_CONFIG_FILE)
    if (existsSync(path)) {
      let parsed: unknown
      try {
        parsed = JSON.parse(readFileSync(path, 'utf8'))
      } catch {
        throw new ExitError(`${path} is not valid JSON; fix it or run coffer setup again.`)
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ExitError(`${path} must hold a JSON object.`)
      const c = parsed as Record<string, unknown>
      const config: ProjectConfig = {}
      for (const k of ['workspace', 'project', 'environment', 'url'] as const) {
        if (c[k] === undefined) continue
        if (typeof c[k] !== 'string') throw new ExitError(`${path}: "${k}" must be a string.`)
        config[k] = c[k] as string
      }
      return { path, config }
    }
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

/** Writes .coffer.json into `dir`. */
export function writeProjectConfig(dir: string, config: ProjectConfig): string {
  const path = join(dir, PROJECT_CONFIG_FILE)
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 })
  return path
}
