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

  constructor() {
    this.auditIntegrityOk.set(1)
  }

  /** The Prometheus text exposition of every metric; `extra` adds live values read at scrape time. */
  render(extra: { batches: number; units: number }): string {
    this.commitBatches.set(extra.batches)
    this.commitUnits.set(extra.units)
    return `${[
      this.auditIntegrityOk,
      this.auditIntegrityWorkspaceOk,
      this.auditLastVerify,
      this.checkpointsIssued,
      this.keysRotated,
      this.resealedVersions,
      this.resealFailures,
      this.authFailuresUnattributed,
      this.commitBatches,
      this.commitUnits,
    ]
      .map((m) => m.render())
      .join('\n')}\n`
  }
}
