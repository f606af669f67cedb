/** The time as server code sees it: the context's clock, injectable for tests. */
export type Clock = () => Date

/**
 * The system clock. The one place server code reads the wall clock; everything else takes
 * its time from the context's clock (`AppContext.clock`) or a `now` its caller passes, so a
 * test's clock decides every expiry, timestamp and id alike (test/architecture/clock.test.ts).
 */
export const systemClock: Clock = () => new Date()

/**
 * The system clock in milliseconds, for elapsed-time windows that must not follow a test's
 * clock (the DEK cache's TTL, in-memory rate-limit windows). No Date is made: these run on
 * every request.
 */
export const systemMillis = (): number => Date.now()
