import { isConnectionError } from './connection-errors.js'

// When a failed transaction is run again instead of answering an error. PostgreSQL rolls a
// transaction back whole when it loses a deadlock (40P01) or a serialization race (40001):
// nothing of it happened, so running it again is always safe, and the next try usually wins.
// A connection that died is different: if it died before COMMIT was sent, nothing committed
// and the transaction may run once more (the pool hands out a fresh connection); if it died
// during COMMIT, nobody knows whether it committed, so it is not run again and the caller
// answers 503 ERR_DATABASE_UNAVAILABLE.

/** Why a transaction was run again (the label of coffer_transaction_retries_total). */
export type RetryReason = 'deadlock' | 'serialization' | 'connection'

/** Tells whoever counts retries (the context's metrics) that one happened. */
export type RetryObserver = (reason: RetryReason) => void

/** Tries after the first: a conflict is retried up to 5 times, a lost connection once. */
export const RETRY_LIMITS: Readonly<Record<RetryReason, number>> = { deadlock: 5, serialization: 5, connection: 1 }

/** The conflict `err` (or an error in its cause chain) reports: a lost deadlock or serialization race. */
export function conflictReason(err: unknown): 'deadlock' | 'serialization' | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (code === '40P01') return 'deadlock'
    if (code === '40001') return 'serialization'
  }
  return undefined
}

/**
 * Whether a transaction that failed with `err` may run again, and why. `committing` says the
 * failure came after the transaction's work was done, i.e. while COMMIT was in flight.
 */
export function retryReason(err: unknown, committing: boolean): RetryReason | undefined {
  const conflict = conflictReason(err)
  if (conflict) return conflict
  if (!committing && isConnectionError(err)) return 'connection'
  return undefined
}

/**
 * A random pause before try `attempt` (1, 2, …): full jitter over a window that doubles from
 * 10 ms up to 320 ms, so transactions that collided do not collide again in lock step.
 */
export function retryDelayMs(attempt: number): number {
  return Math.random() * Math.min(320, 10 * 2 ** (attempt - 1))
}

/** Counts of the retries a unit of work has had, per reason. */
export type RetryCounts = Partial<Record<RetryReason, number>>

/** Whether one more try for `reason` stays within RETRY_LIMITS; counts it in `counts` if so. */
export function takeRetry(counts: RetryCounts, reason: RetryReason): boolean {
  const used = counts[reason] ?? 0
  if (used >= RETRY_LIMITS[reason]) return false
  counts[reason] = used + 1
  return true
}

/**
 * Runs the transaction `attempt` (which calls `done()` once its work has finished and only
 * COMMIT remains) and runs it again while its failure is retryable and within the limits.
 */
export async function withTransactionRetry<T>(attempt: (done: () => void) => Promise<T>, observe?: RetryObserver): Promise<T> {
  const counts: RetryCounts = {}
  for (let tries = 1; ; tries++) {
    let committing = false
    try {
      return await attempt(() => {
        committing = true
      })
    } catch (err) {
      const reason = retryReason(err, committing)
      if (!reason || !takeRetry(counts, reason)) throw err
      observe?.(reason)
      await new Promise((r) => setTimeout(r, retryDelayMs(tries)))
    }
  }
}
