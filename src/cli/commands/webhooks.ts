import { readFileSync } from 'node:fs'
import { timingSafeEqual } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import type { WebhookDeliveryView, WebhookView } from '../../api/webhooks.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

function row(w: WebhookView): Array<string | number> {
  const state = w.enabled ? (w.failingSince ? `failing since ${w.failingSince}` : 'enabled') : `disabled (${w.disabledReason ?? 'by hand'})`
  return [w.id, w.url, w.events.join(','), state, w.secretVersion]
}

/** `coffer webhooks create URL --event E [--event E…] [--description TEXT]`: prints the signing secret once. */
export async function webhooksCreate(url: string, opts: Opts & { event?: string[]; description?: string }): Promise<void> {
  const events = (opts.event ?? [])
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter(Boolean)
  if (events.length === 0)
    throw new ExitError('Choose at least one event with --event (e.g. --event secret.updated); see docs/webhooks.md.')
  const client = await connect(opts)
  const r = await client.webhookCreate(await resolveWorkspace(client, opts), {
    url,
    events,
    ...(opts.description !== undefined ? { description: opts.description } : {}),
  })
  if (opts.json) return printJson({ id: r.webhook.id, secret: r.secret, webhook: r.webhook })
  process.stdout.write(`${r.secret}\n`)
  info(`Webhook ${r.webhook.id} → ${r.webhook.url} for ${r.webhook.events.join(', ')}.`)
  info('Above is its signing secret, shown only now: keep it where your receiver reads it (docs/webhooks.md shows how to verify).')
}

/** `coffer webhooks list`. */
export async function webhooksList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const list = await client.webhookList(await resolveWorkspace(client, opts))
  if (opts.json) return printJson(list)
  if (!list.length) return info('No webhooks. Add one: coffer webhooks create URL --event secret.updated')
  printTable(['ID', 'URL', 'EVENTS', 'STATE', 'SECRET'], list.map(row))
}

/** `coffer webhooks delete ID`. */
export async function webhooksDelete(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const w = await client.webhookDelete(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(w)
  info(`Deleted webhook ${w.id} (${w.url}) and its delivery log.`)
}

/** `coffer webhooks rotate-secret ID [--overlap-hours N]`: prints the new secret once. */
export async function webhooksRotateSecret(id: string, opts: Opts & { overlapHours?: string }): Promise<void> {
  const hours = opts.overlapHours === undefined ? undefined : Number(opts.overlapHours)
  if (hours !== undefined && !(Number.isFinite(hours) && hours >= 0 && hours <= 168))
    throw new ExitError('--overlap-hours must be a number of hours from 0 to 168.')
  const client = await connect(opts)
  const r = await client.webhookRotateSecret(await resolveWorkspace(client, opts), id, hours)
  if (opts.json) return printJson({ id: r.webhook.id, secret: r.secret, webhook: r.webhook })
  process.stdout.write(`${r.secret}\n`)
  info(
    r.webhook.previousSecretUntil
      ? `New signing secret (version ${r.webhook.secretVersion}); messages carry both signatures until ${r.webhook.previousSecretUntil}.`
      : `New signing secret (version ${r.webhook.secretVersion}); the previous one no longer signs.`,
  )
}

/** `coffer webhooks enable ID`: after it was disabled for failing. */
export async function webhooksEnable(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const w = await client.webhookEnable(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(w)
  info(`Webhook ${w.id} is enabled.`)
}

/** `coffer webhooks test ID`: queues a webhook.test message. */
export async function webhooksTest(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const d = await client.webhookTest(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(d)
  process.stdout.write(`${d.id}\n`)
  info(`Queued a webhook.test message; follow it with: coffer webhooks deliveries ${id}`)
}

function deliveryRow(d: WebhookDeliveryView): Array<string | number> {
  const last = d.lastStatus !== null ? String(d.lastStatus) : (d.lastError ?? '-')
  return [
    d.id,
    d.event,
    d.status,
    d.attempts,
    last,
    d.lastLatencyMs === null ? '-' : `${d.lastLatencyMs} ms`,
    d.createdAt,
    d.nextAttemptAt ?? '-',
  ]
}

/** `coffer webhooks deliveries ID [--limit N]`: the delivery log, newest first. */
export async function webhooksDeliveries(id: string, opts: Opts & { limit?: string }): Promise<void> {
  const limit = opts.limit === undefined ? undefined : Number(opts.limit)
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 500))
    throw new ExitError('--limit must be a whole number from 1 to 500.')
  const client = await connect(opts)
  const list = await client.webhookDeliveries(await resolveWorkspace(client, opts), id, limit)
  if (opts.json) return printJson(list)
  if (!list.length) return info('No messages yet.')
  printTable(['MESSAGE', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST', 'LATENCY', 'CREATED', 'NEXT'], list.map(deliveryRow))
}

/** `coffer webhooks redeliver MESSAGE_ID`. */
export async function webhooksRedeliver(deliveryId: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const d = await client.webhookRedeliver(await resolveWorkspace(client, opts), deliveryId)
  if (opts.json) return printJson(d)
  info(`Message ${d.id} queued again (${d.event}).`)
}

/**
 * `coffer webhooks verify --id ID --timestamp TS --signature SIG [FILE]`: checks a received
 * message (body from FILE or stdin) against the secret in COFFER_WEBHOOK_SECRET or
 * --secret-file, as a receiver must. Exit 0 when one signature matches and the timestamp is
 * within 5 minutes; `--ignore-age` checks the signature alone (for a message captured earlier).
 */
export async function webhooksVerify(
  file: string | undefined,
  opts: { id?: string; timestamp?: string; signature?: string; secretFile?: string; ignoreAge?: boolean; json?: boolean },
): Promise<void> {
  const secret = (opts.secretFile ? readFileSync(opts.secretFile, 'utf8') : (process.env.COFFER_WEBHOOK_SECRET ?? '')).trim()
  if (!secret)
    throw new ExitError('Give the signing secret in COFFER_WEBHOOK_SECRET or with --secret-file PATH (never on the command line).')
  if (!opts.id || !opts.timestamp || !opts.signature)
    throw new ExitError('Give the headers as --id (webhook-id), --timestamp (webhook-timestamp) and --signature (webhook-signature).')
  const body = readFileSync(file === undefined || file === '-' ? 0 : file)
  let hook: Webhook
  try {
    hook = new Webhook(secret)
  } catch {
    throw new ExitError('The secret is not a webhook signing secret (whsec_…).')
  }
  const headers = { 'webhook-id': opts.id, 'webhook-timestamp': opts.timestamp, 'webhook-signature': opts.signature }
  let ok: boolean
  let reason = ''
  try {
    hook.verify(body, headers)
    ok = true
  } catch (err) {
    ok = false
    reason = (err as Error).message
    if (opts.ignoreAge && /timestamp/i.test(reason)) {
      const seconds = Number(opts.timestamp)
      if (Number.isInteger(seconds)) {
        const expected = Buffer.from(hook.sign(opts.id, new Date(seconds * 1000), body).split(',')[1] ?? '')
        ok = opts.signature.split(' ').some((s) => {
          const got = Buffer.from(s.split(',')[1] ?? '')
          return got.length === expected.length && timingSafeEqual(got, expected)
        })
        reason = ok ? '' : 'No matching signature'
      }
    }
  }
  if (opts.json) printJson({ valid: ok, ...(ok ? {} : { reason }) })
  else if (ok) info('Valid: the message was signed with this secret.')
  if (!ok) throw new ExitError(`Invalid: ${reason}.`, { code: 'ERR_WEBHOOK_SIGNATURE' })
}
