import { readFileSync } from 'node:fs'
import { type ChangeRequest, CofferChangeRequested, type CofferClient } from '../../client/client.js'
import { ExitError } from '../exit-error.js'
import {
  detectFormat,
  formatSecrets,
  FormatError,
  parseSecrets,
  type ExportFormat,
  type ImportFormat,
  type SecretEntry,
} from '../formats/index.js'
import { info, printJson } from '../output.js'
import { connect, resolveScope, type ScopeOptions } from '../session.js'
import { describeProposed } from '../change-request-text.js'

const EXPORT_FORMATS = ['dotenv', 'json', 'yaml', 'shell'] as const
const IMPORT_FORMATS = ['dotenv', 'json', 'yaml'] as const
/** Keys per write: the most the apply endpoint takes in one request (each batch is atomic). */
const IMPORT_BATCH = 1000

/**
 * `coffer export [--format dotenv|json|yaml|shell] [--raw]`: the environment's secrets on stdout
 * (audited), as `run` sees them; `--raw` leaves references unresolved.
 */
export async function exportSecrets(opts: ScopeOptions & { format?: string; raw?: boolean }): Promise<void> {
  const format = (opts.format ?? 'dotenv') as ExportFormat
  if (!EXPORT_FORMATS.includes(format)) throw new ExitError(`--format must be one of ${EXPORT_FORMATS.join(', ')}.`)
  const client = await connect(opts)
  const secrets = await client.listSecrets(await resolveScope(client, opts), { reveal: true, raw: !!opts.raw })
  process.stdout.write(
    formatSecrets(
      secrets.map((s) => ({ key: s.key, value: s.value ?? '' })),
      format,
    ),
  )
}

/**
 * `coffer import FILE [--format F]`: sets every secret of a .env/JSON/YAML file in one atomic
 * write; values equal to the stored ones are reported unchanged and write nothing.
 */
export async function importSecrets(file: string, opts: ScopeOptions & { format?: string; json?: boolean }): Promise<void> {
  let text: string
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8')
  } catch (err) {
    throw new ExitError(`Cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`)
  }
  if (opts.format && !IMPORT_FORMATS.includes(opts.format as ImportFormat))
    throw new ExitError(`--format must be one of ${IMPORT_FORMATS.join(', ')}.`)
  let entries: SecretEntry[]
  try {
    entries = parseSecrets(text, (opts.format as ImportFormat | undefined) ?? detectFormat(file, text))
  } catch (err) {
    if (err instanceof FormatError) throw new ExitError(`${file}: ${err.message}`, { code: err.code })
    throw err
  }
  if (!entries.length) throw new ExitError(`${file} holds no secrets.`)
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  // @NOTE the server compares each value with the stored one (by keyed fingerprint) inside the
  // write: an identical value writes no version, and a changed one keeps its comment and tags.
  const done = { added: [] as string[], changed: [] as string[], unchanged: [] as string[] }
  // A protected environment turns each batch into a change request: every batch is still proposed.
  const proposed: ChangeRequest[] = []
  for (let i = 0; i < entries.length; i += IMPORT_BATCH) {
    let r: Awaited<ReturnType<CofferClient['applySecrets']>>
    try {
      r = await client.applySecrets(scope, { upserts: entries.slice(i, i + IMPORT_BATCH) })
    } catch (err) {
      if (!(err instanceof CofferChangeRequested)) throw err
      proposed.push(err.changeRequest)
      continue
    }
    done.added.push(...r.adds.map((d) => d.key))
    done.changed.push(...r.changes.map((d) => d.key))
    done.unchanged.push(...r.unchanged.map((d) => d.key))
  }
  if (proposed.length) return reportProposed(proposed, opts.json ? done : undefined)
  if (opts.json) return printJson(done)
  info(
    `Imported into ${scope.project}/${scope.environment}: ${done.added.length} added, ${done.changed.length} changed, ${done.unchanged.length} unchanged${entries.length > IMPORT_BATCH ? ` (in batches of ${IMPORT_BATCH})` : ''}.`,
  )
}

/**
 * An import into a protected environment: the id of each change request on stdout (one per
 * batch of IMPORT_BATCH keys, each approved and applied on its own) and what each waits for on
 * stderr; with --json, `changeRequests` beside what was written (nothing, unless protection
 * changed during the import).
 */
function reportProposed(proposed: readonly ChangeRequest[], json: Record<string, string[]> | undefined): void {
  if (json) {
    printJson({ ...json, changeRequests: proposed.map((r) => r.id) })
    return
  }
  for (const r of proposed) {
    process.stdout.write(`${r.id}\n`)
    process.stderr.write(`${describeProposed(r)}\n`)
  }
  if (proposed.length > 1)
    info(
      `The import was proposed as ${proposed.length} change requests of at most ${IMPORT_BATCH} keys each; each is approved and applied on its own.`,
    )
}
