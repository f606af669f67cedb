// Load generation with autocannon (programmatic API) and the per-run accounting around it:
// server CPU from /proc, load-generator CPU, and the SQLite probe's commit counters.
import { existsSync, readFileSync, rmSync } from 'node:fs'
import autocannon from 'autocannon'
import { processCpuSeconds, sleep } from './harness.js'

export interface RunResult {
  title: string
  connections: number
  /** Runs whose in-flight requests may have been audited without being counted (warm-up, measured). */
  stops: number
  /** Mean requests per second over the measured window (2xx and non-2xx). */
  rps: number
  /** 2xx responses per second. */
  okPerSec: number
  /** Latency in ms: mean, median, 99th percentile, max. */
  mean: number
  p50: number
  p99: number
  max: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  /** 2xx answered during the warm-up run. */
  warmupOk: number
  warmupBad: number
  statusCodes: Record<string, number>
  durationSec: number
  /** CPU seconds per second of the server process (1.0 = one core busy). */
  serverCpu: number | null
  /** Same for this process (the load generator). */
  loadgenCpu: number
  probe: ProbeDelta | null
}

export interface ProbeStats {
  prepared: number
  executions: number
  begins: number
  commits: number
  rollbacks: number
  savepoints: number
  auditInserts: number
  /** Milliseconds inside better-sqlite3 calls, all statements and COMMIT alone (every thread). */
  sqlMs: number
  commitMs: number
  /** The same on the main thread alone: time its event loop waited. */
  loopSqlMs: number
  loopCommitMs: number
  statements: Record<string, number>
  statementMs: Record<string, number>
}
export type ProbeDelta = ProbeStats

/** Reads the SQLite probe's counters from a server started with bench/lib/sqlite-probe.mjs. */
export async function readProbe(pid: number, file: string | undefined): Promise<ProbeStats | null> {
  if (!file) return null
  rmSync(file, { force: true })
  process.kill(pid, 'SIGUSR2')
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as ProbeStats
      } catch {
        // partially written; retry
      }
    }
    await sleep(10)
  }
  return null
}

function diff(a: ProbeStats | null, b: ProbeStats | null): ProbeDelta | null {
  if (!a || !b) return null
  const statements: Record<string, number> = {}
  const statementMs: Record<string, number> = {}
  for (const [k, v] of Object.entries(b.statements)) {
    const d = v - (a.statements[k] ?? 0)
    if (d > 0) {
      statements[k] = d
      statementMs[k] = (b.statementMs[k] ?? 0) - (a.statementMs[k] ?? 0)
    }
  }
  return {
    prepared: b.prepared - a.prepared,
    executions: b.executions - a.executions,
    begins: b.begins - a.begins,
    commits: b.commits - a.commits,
    rollbacks: b.rollbacks - a.rollbacks,
    savepoints: b.savepoints - a.savepoints,
    auditInserts: b.auditInserts - a.auditInserts,
    sqlMs: b.sqlMs - a.sqlMs,
    commitMs: b.commitMs - a.commitMs,
    loopSqlMs: b.loopSqlMs - a.loopSqlMs,
    loopCommitMs: b.loopCommitMs - a.loopCommitMs,
    statements,
    statementMs,
  }
}

/**
 * Waits (at most `maxMs`) until the server has finished the requests a stopped run left in
 * flight: the probe's counters, or else the server's CPU time, stop moving for 250 ms.
 */
async function settle(pid: number, file: string | undefined, maxMs = 8000): Promise<ProbeStats | null> {
  const end = performance.now() + maxMs
  let last = file ? await readProbe(pid, file) : null
  let lastCpu = processCpuSeconds(pid)
  while (performance.now() < end) {
    await sleep(250)
    if (file) {
      const now = await readProbe(pid, file)
      if (now && last && now.executions === last.executions) return now
      last = now
    } else {
      const cpu = processCpuSeconds(pid)
      if (cpu !== null && lastCpu !== null && cpu - lastCpu < 0.01) return null
      lastCpu = cpu
    }
  }
  return last
}

function bad(r: autocannon.Result): number {
  return r.non2xx + r.errors + r.timeouts
}

/** A warm-up run, then the measured run, with CPU and probe accounting around the latter. */
export async function measure(
  title: string,
  options: autocannon.Options,
  opts: { warmupSec: number; durationSec: number; serverPid: number; probeFile?: string },
): Promise<RunResult> {
  process.stderr.write(`bench: ${title}: warm-up ${opts.warmupSec}s, then ${opts.durationSec}s at ${options.connections} connections\n`)
  const warm = opts.warmupSec > 0 ? await autocannon({ ...options, duration: opts.warmupSec }) : null
  const probe0 = await settle(opts.serverPid, opts.probeFile)
  const cpu0 = processCpuSeconds(opts.serverPid)
  const self0 = process.cpuUsage()
  const t0 = performance.now()
  const r = await autocannon({ ...options, duration: opts.durationSec })
  const elapsed = (performance.now() - t0) / 1000
  const self1 = process.cpuUsage(self0)
  const cpu1 = processCpuSeconds(opts.serverPid)
  const probe1 = await settle(opts.serverPid, opts.probeFile)
  const statusCodes: Record<string, number> = {}
  for (const [code, v] of Object.entries((r as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {}))
    statusCodes[code] = v.count
  return {
    title,
    connections: options.connections ?? 10,
    stops: warm ? 2 : 1,
    rps: r.requests.average,
    okPerSec: r['2xx'] / r.duration,
    mean: r.latency.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    warmupOk: warm ? warm['2xx'] : 0,
    warmupBad: warm ? bad(warm) : 0,
    statusCodes,
    durationSec: r.duration,
    serverCpu: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / elapsed : null,
    loadgenCpu: (self1.user + self1.system) / 1e6 / elapsed,
    probe: diff(probe0, probe1),
  }
}
