// Who is watching which environment on this node, and the hints that wake them: a secret of
// the environment changed (PostgreSQL: a `coffer_secrets` notification from any node, migration
// 15; every engine: a write committed on this node), or a credential of the workspace or person
// changed (`coffer_auth`, migration 12). A hint carries no key and no value, and a watcher never
// trusts it: it re-reads (and re-authorises) through the normal read path and compares.

/** One watcher: the environment it watches, whose credential it holds, and how to wake it. */
export interface SecretWatcher {
  readonly workspaceId: string
  readonly environmentId: string
  /** Other environments whose changes also wake it (those its answer depends on); may change while it watches. */
  readonly follows?: ReadonlySet<string>
  /** The person behind the credential (null for an integration): their `coffer_auth` scope. */
  readonly userId: string | null
  /** Called on a hint; the watcher re-reads. Must not throw. */
  wake(): void
  /** Called when the node stops: the watcher ends its stream. */
  close(): void
}

/**
 * The watchers of one node. `live` says whether every change reaches this node as a hint (on
 * PostgreSQL while its LISTEN connection is up; on SQLite always): while it is false, watchers
 * poll instead.
 */
export class SecretChanges {
  readonly #watchers = new Set<SecretWatcher>()
  #live: boolean

  constructor(options: { live: boolean }) {
    this.#live = options.live
  }

  get live(): boolean {
    return this.#live
  }

  /** How many watchers this node serves. */
  get size(): number {
    return this.#watchers.size
  }

  /** Adds a watcher; the function returned removes it. */
  watch(w: SecretWatcher): () => void {
    this.#watchers.add(w)
    return () => {
      this.#watchers.delete(w)
    }
  }

  /** `coffer_secrets` payload `<workspace id>:<environment id>`: wakes that environment's watchers. */
  secretChanged(payload: string): void {
    const colon = payload.indexOf(':')
    const workspaceId = payload.slice(0, colon)
    const environmentId = payload.slice(colon + 1)
    for (const w of this.#watchers)
      if (w.workspaceId === workspaceId && (w.environmentId === environmentId || w.follows?.has(environmentId))) w.wake()
  }

  /** A write committed on this node in `workspaceId` (a secret, or a token, a role…): its watchers re-read. */
  workspaceWritten(workspaceId: string): void {
    for (const w of this.#watchers) if (w.workspaceId === workspaceId) w.wake()
  }

  /** `coffer_auth` scope (a workspace id or a user id): the watchers whose credential it may concern re-authorise. */
  authChanged(scope: string): void {
    for (const w of this.#watchers) if (w.workspaceId === scope || w.userId === scope) w.wake()
  }

  /** The node's notification channel came up (true) or went down (false): missed hints are made up by a re-read. */
  setLive(live: boolean): void {
    this.#live = live
    for (const w of this.#watchers) w.wake()
  }

  /** Ends every stream (the server is stopping). */
  closeAll(): void {
    for (const w of [...this.#watchers]) w.close()
    this.#watchers.clear()
  }
}
