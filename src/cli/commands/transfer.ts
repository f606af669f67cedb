import { readFileSync } from 'node:fs'
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

const EXPORT_FORMATS = ['dotenv', 'json', 'yaml', 'shell'] as const
const IMPORT_FORMATS = ['dotenv', 'json', 'yaml'] as const

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

/** `coffer import FILE [--format F]`: sets every secret of a .env/JSON/YAML file in one atomic write. */
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
  const written = []
  for (let i = 0; i < entries.length; i += 500) written.push(...(await client.setSecrets(scope, entries.slice(i, i + 500))))
  if (opts.json) return printJson(written)
  info(
    `Imported ${written.length} secrets into ${scope.project}/${scope.environment}${entries.length > 500 ? ' (in batches of 500)' : ''}.`,
  )
}
