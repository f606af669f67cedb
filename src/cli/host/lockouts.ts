// `coffer lockouts list|clear`: run on a server host with the settings of `coffer server`.
// With REDIS_URL the lockouts are the shared counters in Redis, the same for every node, and
// these commands read and clear them there. Without it each running server counts in its own
// memory, out of reach of another process: the commands say so and change nothing.
import { Redis } from 'ioredis'
import { buildConfig, type RateLimitConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { scrub } from '../../scrub.js'
import { clearLockouts, listLockouts, type LockoutTarget } from '../../server/lockouts.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'

const NO_REDIS =
  'REDIS_URL is not set: each running server keeps its lockouts in its own memory, where this command cannot reach them. ' +
  'They end when they expire, or when that server restarts.'

async function withRedis<T>(f: (redis: Redis, config: RateLimitConfig) => Promise<T>): Promise<T> {
  const config = buildConfig(readEnv()).rateLimit
  if (!config.redisUrl) throw new ExitError(NO_REDIS)
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
    commandTimeout: 10_000,
    retryStrategy: () => null,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
  } catch (err) {
    const where = new URL(config.redisUrl)
    throw new ExitError(`Cannot reach Redis at ${where.hostname}:${where.port || '6379'}: ${scrub((err as Error).message)}`)
  }
  try {
    return await f(redis, config)
  } finally {
    redis.disconnect()
  }
}

/** `coffer lockouts list [--json]`: every address and account locked out now, in every node's shared counters. */
export async function lockoutsList(opts: { json?: boolean }): Promise<void> {
  const list = await withRedis((redis, config) => listLockouts(redis, config))
  if (opts.json) return printJson({ lockouts: list })
  if (list.length === 0) return info('No lockouts.')
  printTable(
    ['LIMIT', 'ADDRESS OR ACCOUNT HASH', 'ATTEMPTS', 'ENDS IN', 'STRIKES'],
    list.map((l) => [l.limit, l.subject, `${l.count}/${l.max}`, `${l.retryAfterSeconds} s`, l.strikes]),
  )
}

/** `coffer lockouts clear --address A | --account EMAIL | --all [--json]`. */
export async function lockoutsClear(opts: { address?: string; account?: string; all?: boolean; json?: boolean }): Promise<void> {
  const given = [opts.address !== undefined, opts.account !== undefined, opts.all === true].filter(Boolean).length
  if (given !== 1) throw new ExitError('Give exactly one of --address ADDRESS, --account EMAIL or --all.')
  const target: LockoutTarget =
    opts.address !== undefined ? { address: opts.address } : opts.account !== undefined ? { account: opts.account } : { all: true }
  const removed = await withRedis((redis, config) => clearLockouts(redis, config.keyPrefix, target))
  if (opts.json) return printJson({ removedKeys: removed })
  info(
    removed === 0
      ? 'Nothing to clear: no counter matched.'
      : `Cleared: ${removed} counter key(s) removed; the next lockout starts at one window.`,
  )
}
