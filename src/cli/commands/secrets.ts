import { readFileSync } from 'node:fs'
import { ExitError } from '../exit-error.js'
import { Names } from '../names.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveScope, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }
const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/

function readStdin(): string {
  if (process.stdin.isTTY) throw new ExitError('KEY=- reads the value from stdin; pipe it in (e.g. `cat file | coffer secrets set KEY=-`).')
  return readFileSync(0, 'utf8')
}

/**
 * `coffer secrets set KEY=VALUE [KEY=VALUE ...]`: one key is a single write; several are
 * one atomic bulk write. `KEY=-` reads that value from stdin.
 */
export async function secretsSet(
  pairs: string[],
  opts: Opts & { comment?: string; ifVersion?: string; personal?: boolean },
): Promise<void> {
  if (!pairs.length) throw new ExitError('Give at least one KEY=VALUE.')
  if (opts.personal && (pairs.length > 1 || opts.comment !== undefined || opts.ifVersion !== undefined))
    throw new ExitError('--personal sets one KEY=VALUE at a time, without --comment or --if-version.')
  let stdinUsed = false
  const items = pairs.map((p) => {
    const i = p.indexOf('=')
    if (i <= 0) throw new ExitError(`Expected KEY=VALUE, got an argument without "=" (${p.slice(0, 40).replace(/=.*/, '')}).`)
    const key = p.slice(0, i)
    if (!KEY_RE.test(key)) throw new ExitError(`Invalid key ${JSON.stringify(key)}: keys match ^[A-Za-z_][A-Za-z0-9_]*$.`)
    let value = p.slice(i + 1)
    if (value === '-') {
      if (stdinUsed) throw new ExitError('Only one KEY=- can read from stdin.')
      stdinUsed = true
      value = readStdin()
    }
    return { key, value, ...(opts.comment !== undefined ? { comment: opts.comment } : {}) }
  })
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  if (opts.personal) {
    const o = await client.setPersonalOverride(scope, items[0]!.key, items[0]!.value)
    if (opts.json) return printJson(o)
    return info(`${o.key}: your personal override is set in ${scope.project}/${scope.environment} (only your fetches see it).`)
  }
  if (items.length === 1) {
    const it = items[0]!
    const ifVersion = opts.ifVersion === undefined ? undefined : Number(opts.ifVersion)
    if (ifVersion !== undefined && !Number.isInteger(ifVersion)) throw new ExitError('--if-version must be a whole number.')
    const s = await client.setSecret(scope, it.key, {
      value: it.value,
      ...(it.comment !== undefined ? { comment: it.comment } : {}),
      ...(ifVersion !== undefined ? { ifVersion } : {}),
    })
    if (opts.json) return printJson(s)
    return info(`${s.key} set (version ${s.version}) in ${scope.project}/${scope.environment}.`)
  }
  if (opts.ifVersion !== undefined) throw new ExitError('--if-version works with one KEY=VALUE at a time.')
  const written = await client.setSecrets(scope, items)
  if (opts.json) return printJson(written)
  info(
    `${written.length} secrets set in ${scope.project}/${scope.environment}: ${written.map((s) => `${s.key} (v${s.version})`).join(', ')}.`,
  )
}

/**
 * `coffer secrets get KEY [--raw]`: the value on stdout (audited on the server) — references
 * resolved and your personal override applied; `--raw` prints references as stored.
 */
export async function secretsGet(key: string, opts: Opts & { raw?: boolean }): Promise<void> {
  const client = await connect(opts)
  const s = await client.getSecret(await resolveScope(client, opts), key, { reveal: true, raw: !!opts.raw })
  if (opts.json) return printJson(s)
  process.stdout.write((s.value ?? '') + (process.stdout.isTTY ? '\n' : ''))
}

/** `coffer secrets list [--reveal]`: keys and versions; values only with --reveal. */
export async function secretsList(opts: Opts & { reveal?: boolean; deleted?: boolean; raw?: boolean }): Promise<void> {
  if (opts.raw && !opts.reveal) throw new ExitError('--raw shows values as stored: use it with --reveal.')
  const client = await connect(opts)
  const secrets = await client.listSecrets(await resolveScope(client, opts), {
    reveal: !!opts.reveal,
    includeDeleted: !!opts.deleted,
    raw: !!opts.raw,
  })
  if (opts.json) return printJson(secrets)
  if (!secrets.length) return info('No secrets in this environment.')
  const mine = secrets.some((s) => s.overridden)
  const imported = secrets.some((s) => s.importedFrom !== undefined)
  const head = [
    'KEY',
    'VERSION',
    'UPDATED',
    ...(opts.deleted ? ['DELETED'] : []),
    ...(mine ? ['PERSONAL'] : []),
    ...(imported ? ['FROM'] : []),
    ...(opts.reveal ? ['VALUE'] : []),
  ]
  printTable(
    head,
    secrets.map((s) => [
      s.key,
      s.version,
      s.updatedAt,
      ...(opts.deleted ? [s.deleted ? 'yes' : ''] : []),
      ...(mine ? [s.overridden ? 'yes (yours)' : ''] : []),
      ...(imported ? [s.importedFrom ?? ''] : []),
      ...(opts.reveal ? [JSON.stringify(s.value ?? '')] : []),
    ]),
  )
}

/** `coffer secrets delete KEY` (restorable with `coffer secrets restore KEY`); `--personal` removes only your override. */
export async function secretsDelete(key: string, opts: Opts & { personal?: boolean }): Promise<void> {
  const client = await connect(opts)
  if (opts.personal) {
    const scope = await resolveScope(client, opts)
    const o = await client.deletePersonalOverride(scope, key)
    if (opts.json) return printJson(o)
    return info(`${o.key}: your personal override is removed from ${scope.project}/${scope.environment}; you see the shared value again.`)
  }
  const s = await client.deleteSecret(await resolveScope(client, opts), key)
  if (opts.json) return printJson(s)
  info(`${s.key} deleted (version ${s.version}); undo with: coffer secrets restore ${s.key}`)
}

/** `coffer secrets restore KEY`. */
export async function secretsRestore(key: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const s = await client.restoreSecret(await resolveScope(client, opts), key)
  if (opts.json) return printJson(s)
  info(`${s.key} restored (version ${s.version}).`)
}

/** `coffer secrets history KEY`: every version, newest first. */
export async function secretsHistory(key: string, opts: Opts & { reveal?: boolean }): Promise<void> {
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const h = await client.history(scope, key, { reveal: !!opts.reveal })
  if (opts.json) return printJson(h)
  const names = new Names(client, scope.workspace)
  printTable(
    ['VERSION', 'ORIGIN', 'CREATED', 'BY', ...(opts.reveal ? ['VALUE'] : [])],
    await Promise.all(
      h.versions.map(async (v) => [
        v.version,
        v.deleted ? 'delete' : v.originVersion ? `${v.origin} of v${v.originVersion}` : v.origin,
        v.createdAt,
        await names.who(v.createdBy),
        ...(opts.reveal ? [v.value === null || v.value === undefined ? '' : JSON.stringify(v.value)] : []),
      ]),
    ),
  )
}

/** `coffer secrets rollback KEY --to N`: a new version equal to version N. */
export async function secretsRollback(key: string, opts: Opts & { to: string }): Promise<void> {
  const to = Number(opts.to)
  if (!Number.isInteger(to) || to < 1) throw new ExitError('--to must be a version number (see coffer secrets history KEY).')
  const client = await connect(opts)
  const s = await client.rollback(await resolveScope(client, opts), key, to)
  if (opts.json) return printJson(s)
  info(`${s.key} rolled back to the value of version ${to} (now version ${s.version}).`)
}
