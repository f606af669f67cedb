// A small Prometheus registry: gauges and counters with labels, rendered in the text
// exposition format at /metrics. Values are numbers about the service, never data.

type Labels = Record<string, string>

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',')
}

class Metric {
  readonly values = new Map<string, number>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
  ) {}
  set(value: number, labels: Labels = {}): void {
    this.values.set(key(labels), value)
  }
  inc(by = 1, labels: Labels = {}): void {
    const k = key(labels)
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(key(labels))
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`]
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ''} ${v}`)
    return lines.join('\n')
  }
}

/** A Prometheus histogram without labels: cumulative buckets, sum and count. */
class Histogram {
  readonly type = 'histogram'
  readonly #counts: number[]
  #sum = 0
  #count = 0
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = buckets.map(() => 0)
  }
  observe(value: number): void {
    this.#sum += value
    this.#count++
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.#counts[i]!++
  }
  /** Observations so far, and how many were at most each bucket's bound. */
  snapshot(): { count: number; sum: number; buckets: Array<{ le: number; count: number }> } {
    return { count: this.#count, sum: this.#sum, buckets: this.buckets.map((le, i) => ({ le, count: this.#counts[i]! })) }
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`]
    this.buckets.forEach((le, i) => {
      lines.push(`${this.name}_bucket{le="${le}"} ${this.#counts[i]}`)
    })
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`, `${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`)
    return lines.join('\n')
  }
}

/** The metrics one Coffer process exports. */
export class Metrics {
  readonly auditIntegrityOk = new Metric(
    'coffer_audit_integrity_ok',
    '1 while every audit log verified at the last check (chain and signed tree root), 0 after a break',
    'gauge',
  )
  readonly auditIntegrityWorkspaceOk = new Metric(
    'coffer_audit_workspace_integrity_ok',
    'Per workspace: 1 if its audit log verified at the last check',
    'gauge',
  )
  readonly auditLastVerify = new Metric(
    'coffer_audit_last_verification_timestamp_seconds',
    'When the audit logs were last verified',
    'gauge',
  )
  readonly checkpointsIssued = new Metric('coffer_audit_checkpoints_issued_total', 'Signed checkpoints issued by the schedule', 'counter')
  readonly keysRotated = new Metric(
    'coffer_data_keys_auto_rotated_total',
    'Data keys rotated by this node on their schedule or usage count, by reason',
    'counter',
  )
  readonly resealedVersions = new Metric('coffer_reseal_versions_total', 'Secret versions re-encrypted under a newer data key', 'counter')
  readonly resealFailures = new Metric('coffer_reseal_failures_total', 'Reseal passes that stopped on an error', 'counter')
  readonly authFailuresUnattributed = new Metric(
    'coffer_auth_failures_unattributed_total',
    'Authentication failures that name no known account (so no workspace audit log records them), by event and reason',
    'counter',
  )
  readonly commitBatches = new Metric('coffer_group_commit_batches_total', 'Durable transactions committed by group commit', 'counter')
  readonly commitUnits = new Metric('coffer_group_commit_units_total', 'Units of work (requests) carried by those transactions', 'counter')
  readonly databaseAvailable = new Metric(
    'coffer_database_available',
    '1 while this node reaches its database, 0 while it cannot (requests answer 503 ERR_DATABASE_UNAVAILABLE)',
    'gauge',
  )
  readonly transactionRetries = new Metric(
    'coffer_transaction_retries_total',
    'Transactions retried after a deadlock, a serialization failure or a connection lost before commit, by reason',
    'counter',
  )
  readonly redisFallbackActive = new Metric(
    'coffer_redis_fallback_active',
    '1 while Redis is unreachable and rate limits are counted per node, 0 while Redis serves them',
    'gauge',
  )
  readonly backupLastSuccess = new Metric(
    'coffer_backup_last_success_timestamp_seconds',
    'When this node last completed a scheduled or pre-migration backup',
    'gauge',
  )
  readonly backupFailures = new Metric('coffer_backup_failures_total', 'Backups that failed, by trigger', 'counter')
  readonly principalCacheLookups = new Metric(
    'coffer_principal_cache_lookups_total',
    'Credentials looked up in the per-node principal cache, by result (hit, miss)',
    'counter',
  )
  readonly principalCacheInvalidations = new Metric(
    'coffer_principal_cache_invalidations_total',
    'Cached principals dropped before their time, by reason (epoch: a request found its epochs changed; notified: a change was notified; channel-down: the notification channel was lost)',
    'counter',
  )
  readonly principalCacheEntries = new Metric('coffer_principal_cache_entries', 'Principals held in the per-node cache', 'gauge')
  readonly targetCacheLookups = new Metric(
    'coffer_target_cache_lookups_total',
    "Projects and environments named by requests answered from the principal cache, looked up in the per-node target cache, by result (hit; miss: resolved from the database, as after a change bumped the workspace's epoch)",
    'counter',
  )
  readonly environmentSnapshotLookups = new Metric(
    'coffer_environment_snapshot_lookups_total',
    "Environment fetches by how their revealed list was read (hit: from the environment's current snapshot; miss: from the rows, none was current; rejected: from the rows, the snapshot did not open — another place's or a tampered ciphertext)",
    'counter',
  )
  readonly environmentSnapshotBuilds = new Metric(
    'coffer_environment_snapshot_builds_total',
    'Environment snapshot builds, by result (built; current: another build got there first; failed)',
    'counter',
  )
  readonly webhookAttempts = new Metric(
    'coffer_webhook_attempts_total',
    'Webhook delivery attempts, by outcome (delivered; retry: failed, tried again later; failed: the schedule is spent)',
    'counter',
  )
  readonly outboundRequests = new Metric(
    'coffer_outbound_requests_total',
    'Requests to user-given URLs through the guarded outbound client, by outcome (ok, refused, failed, timeout, too-large)',
    'counter',
  )
  readonly eventStreams = new Metric('coffer_event_streams', 'Environment change streams (coffer run --watch) open on this node', 'gauge')

  readonly auditPendingEntries = new Metric(
    'coffer_audit_pending_entries',
    'Audit entries queued and not yet integrated into their chain, as this node last saw (all workspaces)',
    'gauge',
  )
  readonly auditMergeLag = new Metric(
    'coffer_audit_merge_lag_seconds',
    "Age of the oldest queued audit entry when this node's sequencer last looked (0: none waiting)",
    'gauge',
  )
  readonly auditIntegrated = new Metric('coffer_audit_integrated_total', "Audit entries integrated by this node's sequencer", 'counter')
  readonly auditSequencerFailures = new Metric(
    'coffer_audit_sequencer_failures_total',
    'Sequencer batches that failed (the entries stay queued), by reason',
    'counter',
  )
  readonly auditMergeDelay = new Histogram(
    'coffer_audit_merge_delay_seconds',
    'Time from an audit entry being queued to its integration into the chain, per entry integrated by this node',
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  )

  constructor() {
    this.auditIntegrityOk.set(1)
    this.databaseAvailable.set(1)
    this.redisFallbackActive.set(0)
  }

  /** Every metric this process exports, in declaration order (a new field is exported without a list to keep). */
  all(): Array<Metric | Histogram> {
    return Object.values(this).filter((v): v is Metric | Histogram => v instanceof Metric || v instanceof Histogram)
  }

  /** The Prometheus text exposition of every metric; `extra` adds live values read at scrape time. */
  render(extra: { batches: number; units: number }): string {
    this.commitBatches.set(extra.batches)
    this.commitUnits.set(extra.units)
    return `${this.all()
      .map((m) => m.render())
      .join('\n')}\n`
  }
}
