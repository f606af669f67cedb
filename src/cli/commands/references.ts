import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'
import { connect, resolveScope, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

/** `P/E` (another project's environment) or `E` (one of this project), as `--from` takes them. */
function importRef(from: string): { project?: string; environment: string } {
  const parts = from.split('/')
  if (parts.length > 2 || parts.some((p) => p === '')) throw new ExitError(`--from takes ENV or PROJECT/ENV, got ${JSON.stringify(from)}.`)
  return parts.length === 2 ? { project: parts[0]!, environment: parts[1]! } : { environment: parts[0]! }
}

/**
 * `coffer envs import --from P/E [--from …]` (or `--none`): the environment imports every key
 * of those environments (its own keys win; a later --from wins over an earlier one). Replaces
 * the list; each reader is checked against every imported environment when values are fetched.
 */
export async function envsImport(opts: Opts & { from?: string[]; none?: boolean }): Promise<void> {
  const from = opts.from ?? []
  if (opts.none && from.length) throw new ExitError('Give --from P/E (one or more) or --none, not both.')
  if (!opts.none && !from.length) throw new ExitError('Give --from P/E (one or more), or --none to import nothing.')
  const imports = from.map(importRef)
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const e = await client.setImports(scope, imports)
  if (opts.json) return printJson(e)
  if (!imports.length) return info(`${scope.project}/${e.slug} imports nothing.`)
  info(`${scope.project}/${e.slug} imports ${from.join(', ')} (its own keys win; a later one wins over an earlier one).`)
}

/** `coffer envs personal-overrides on|off`: whether members may keep their own value for a key here. */
export async function envsPersonalOverrides(state: string, opts: Opts): Promise<void> {
  if (state !== 'on' && state !== 'off') throw new ExitError('Say on or off.')
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const e = await client.setPersonalOverridesAllowed(scope, state === 'on')
  if (opts.json) return printJson(e)
  info(
    state === 'on'
      ? `Members may keep personal overrides in ${scope.project}/${e.slug}${e.restricted || e.sealed ? ' once it is neither restricted nor sealed' : ''} (coffer secrets set --personal KEY=VALUE).`
      : `Personal overrides are off in ${scope.project}/${e.slug}: everyone sees the shared values.`,
  )
}
