import type { ColumnType, Generated, Kysely, Transaction } from 'kysely'

// Table types for Kysely. Times are ISO-8601 UTC strings; booleans are 0/1 integers; binary
// columns are Buffers (SQLite BLOB, PostgreSQL bytea), so both engines read back the same values.

export interface SchemaTable {
  version: number
  name: string
  applied_at: string
}

export interface MetaTable {
  key: string
  value: Buffer
}

export interface WorkspaceTable {
  id: string
  slug: string
  name: string
  /** The workspace's audit fingerprint (HMAC) key, wrapped by the root key. */
  fingerprint_key: Buffer
  root_key_id: string
  created_at: string
  /** Set when the workspace was deleted (its keys shredded); every request for it then answers 404. */
  deleted_at: Generated<string | null>
}

export interface UserTable {
  id: string
  email: string
  name: string
  created_at: string
  /** Argon2id PHC string; null: the account has no password (OIDC, or not set yet). */
  password_hash: ColumnType<string | null, string | null | undefined, string | null>
  email_verified_at: ColumnType<string | null, string | null | undefined, string | null>
  /** How the account was created; an `oidc` account never gets a password. */
  created_via: ColumnType<'invite' | 'password' | 'oidc', 'invite' | 'password' | 'oidc' | undefined, 'invite' | 'password' | 'oidc'>
}

/** A browser session; only the SHA-256 of the cookie's opaque id is stored. */
export interface SessionTable {
  id: string
  id_hash: Buffer
  user_id: string
  method: 'password' | 'oidc' | 'link'
  created_at: string
  last_seen_at: string
  /** The absolute end of the session. */
  expires_at: string
  ip: string
  user_agent: string
  revoked_at: string | null
}

/** A single-use link sent by mail (or issued by an admin); only the token's SHA-256 is stored. */
export interface EmailLinkTable {
  id: string
  token_hash: Buffer
  user_id: string
  purpose: 'verify' | 'reset'
  created_at: string
  expires_at: string
  used_at: string | null
}

/** An OpenID Connect account linked to a user, by (issuer, subject). */
export interface UserIdentityTable {
  issuer: string
  subject: string
  user_id: string
  email: string
  created_at: string
  last_used_at: string
}

/** An OIDC sign-in in flight, keyed by the SHA-256 of its state; removed when used. */
export interface OidcFlowTable {
  state_hash: Buffer
  nonce: string
  code_verifier: string
  return_to: string
  created_at: string
  expires_at: string
}

export interface MembershipTable {
  workspace_id: string
  user_id: string
  role: string
  created_at: string
}

export interface TokenTable {
  id: string
  workspace_id: string
  user_id: string
  name: string
  token_hash: Buffer
  display: string
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}

/** An OIDC issuer a machine identity trusts (migration 19). */
export interface MachineOidcRuleTable {
  id: string
  workspace_id: string
  machine_id: string
  issuer: string
  /** JSON: accepted audiences (at least one). */
  audiences: string
  /** JSON: claim name → exact value or `*` glob; every one must match. */
  claims: string
  created_by: string
  created_at: string
}

export interface ProjectTable {
  id: string
  workspace_id: string
  slug: string
  name: string
  created_at: string
}

export interface EnvironmentTable {
  id: string
  workspace_id: string
  project_id: string
  slug: string
  name: string
  created_at: string
  /** 1: sealed — people reveal or write values only through an active break-glass grant. */
  sealed: Generated<number>
  /** 1: restricted — developers list keys only, unless granted (environment_grants). */
  restricted: Generated<number>
  /** JSON array of the environment ids it imports, in order (migration 13); null: none. */
  imports: ColumnType<string | null, string | null | undefined, string | null>
  /** 1: members may keep personal overrides here (migration 13; never in restricted or sealed ones). */
  personal_overrides: Generated<number>
  /** N > 0: protected — a write becomes a change request that N other Owners/Admins approve (migration 14). */
  change_approvals: Generated<number>
}

/** A Member's role on one project (Owners and Admins need none: they are project admins). */
export interface ProjectMemberTable {
  workspace_id: string
  project_id: string
  user_id: string
  role: 'admin' | 'developer' | 'viewer'
  created_at: string
}

/** Access to one restricted environment given to one project member. */
export interface EnvironmentGrantTable {
  workspace_id: string
  project_id: string
  environment_id: string
  user_id: string
  access: 'read' | 'write'
  created_at: string
}

/** A static service token: scoped, expiring, revocable; stored as its hash. */
export interface ServiceTokenTable {
  id: string
  workspace_id: string
  name: string
  token_hash: Buffer
  display: string
  /** JSON: IntegrationScope[] (src/access/policy.ts). */
  scopes: string
  created_by: string
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}

/** A machine identity: a client id (its id) and a client secret, stored as its hash. */
export interface MachineIdentityTable {
  id: string
  workspace_id: string
  name: string
  secret_hash: Buffer
  secret_display: string
  /** JSON: IntegrationScope[]. */
  scopes: string
  /** JSON: CIDR strings; empty: any address. */
  allowed_cidrs: string
  token_ttl_seconds: number
  created_by: string
  created_at: string
  revoked_at: string | null
  last_used_at: string | null
  /** 1: an access token from an OIDC exchange lives no longer than the ID token had left (migration 19). */
  oidc_limit_ttl: number
}

/** A machine identity's short-lived access token; stored as its hash. */
export interface MachineTokenTable {
  id: string
  workspace_id: string
  machine_id: string
  token_hash: Buffer
  created_at: string
  expires_at: string
  ip: string
  last_used_at: string | null
}

/** An invitation by email: a single-use token, stored hashed, expiring, revocable. */
export interface InvitationTable {
  id: string
  workspace_id: string
  email: string
  role: 'owner' | 'admin' | 'member' | 'auditor'
  project_id: string | null
  project_role: 'admin' | 'developer' | 'viewer' | null
  token_hash: Buffer
  invited_by: string
  created_at: string
  expires_at: string
  accepted_at: string | null
  accepted_by: string | null
  revoked_at: string | null
}

export interface DataKeyTable {
  id: string
  version: number
  workspace_id: string
  project_id: string
  environment_id: string
  wrapped: Buffer
  root_key_id: string
  /**
   * `primary`: new writes use it (one per scope); `active`: still decrypts versions not yet
   * resealed; `shredded`: destroyed with its workspace (wrapped is empty).
   */
  state: 'primary' | 'active' | 'shredded'
  created_at: string
  /** An upper bound of the encryptions made under this key (rotation before 2^31). */
  encryptions: number
}

/** A background job over one scope's keys: today `reseal` after a rotation. */
export interface KeyJobTable {
  id: string
  kind: 'reseal'
  workspace_id: string
  project_id: string
  environment_id: string
  dek_id: string
  /** Versions older than this are resealed under it (or a newer primary). */
  target_version: number
  state: 'running' | 'done' | 'failed'
  reason: string
  total: number
  done: number
  lease_owner: string | null
  /** Epoch milliseconds; a lease past this is free to take. */
  lease_until: number
  error: string | null
  created_at: string
  updated_at: string
  finished_at: string | null
}

export interface SecretTable {
  id: string
  workspace_id: string
  project_id: string
  environment_id: string
  key: string
  current_version: number
  deleted: number
  created_at: string
  updated_at: string
}

export interface SecretVersionTable {
  secret_id: string
  version: number
  workspace_id: string
  project_id: string
  environment_id: string
  value_ct: Buffer | null
  comment_ct: Buffer | null
  tags: string
  deleted: number
  origin: 'set' | 'rollback' | 'delete' | 'restore'
  origin_version: number | null
  dek_id: string | null
  dek_version: number | null
  created_at: string
  created_by: string
  /**
   * HMAC-SHA256 of the value under the workspace's value-fingerprint key (migration 10); null
   * for a deletion and for versions written before it.
   */
  value_fingerprint: Buffer | null
}

/** One member's own value for one key of one environment (migration 13); only their fetches read it. */
export interface PersonalOverrideTable {
  id: string
  workspace_id: string
  project_id: string
  environment_id: string
  user_id: string
  key: string
  /** Bumped on every new value; bound into the value's associated data. */
  version: number
  value_ct: Buffer
  dek_id: string
  dek_version: number
  created_at: string
  updated_at: string
}

export interface AuditHeadTable {
  workspace_id: string
  seq: number
  hash: Buffer
  /** The Merkle tree's right edge: peak hashes, leftmost first (see src/audit/tree-store.ts). */
  peaks: Buffer
  /** The node whose sequencer holds this workspace's lease (migration 11), or null. */
  sequencer: ColumnType<string | null, string | null | undefined, string | null>
  /** Until when (ms since the epoch) the lease is held; 0 when free. */
  sequencer_until: Generated<number>
}

export interface AuditNodeTable {
  workspace_id: string
  level: number
  idx: number
  hash: Buffer
}

export interface AuditCheckpointTable {
  workspace_id: string
  tree_size: number
  root_hash: Buffer
  note: string
  created_at: string
}

/**
 * An entry written by a request and not yet integrated into its workspace's chain (migration
 * 11): every field of an entry but its seq and hashes, which the sequencer assigns.
 */
export interface AuditQueueTable {
  qid: Generated<number>
  workspace_id: string
  id: string
  time: string
  actor_type: string
  actor_id: string
  actor_ip: string
  actor_ua: string
  request_id: string
  action: string
  target_type: string
  target_id: string
  details: string
}

export interface AuditEntryTable {
  workspace_id: string
  seq: number
  id: string
  time: string
  actor_type: string
  actor_id: string
  actor_ip: string
  actor_ua: string
  request_id: string
  action: string
  target_type: string
  target_id: string
  details: string
  prev_hash: Buffer
  hash: Buffer
}

/**
 * The permanent receipt of a workspace deletion, kept after its rows are purged (no foreign
 * key): the final audit tree head and its signed checkpoint prove what the log held.
 */
export interface WorkspaceDeletionTable {
  workspace_id: string
  slug: string
  name: string
  deleted_by: string
  deleted_at: string
  /** The purge job removes the workspace's rows once this time has passed. */
  purge_after: string
  audit_tree_size: number
  audit_root_hash: Buffer
  checkpoint_note: string
  purged_at: string | null
}

/** A break-glass request and, once approved, its grant. */
export interface BreakGlassRequestTable {
  id: string
  workspace_id: string
  requester_id: string
  project_id: string
  environment_id: string
  access: 'read' | 'read-write'
  reason: string
  duration_minutes: number
  approvals_required: number
  /** `expired` is not stored: an active grant past `expires_at` is expired. */
  state: 'pending' | 'active' | 'denied' | 'revoked'
  created_at: string
  activated_at: string | null
  expires_at: string | null
  ended_at: string | null
  ended_by: string | null
  /** 1 once the 'breakglass.expired' audit entry is written (exactly once per grant). */
  expiry_recorded: Generated<number>
}

/** One Owner's or Admin's approval or denial of a break-glass request. */
export interface BreakGlassDecisionTable {
  request_id: string
  workspace_id: string
  user_id: string
  decision: 'approve' | 'deny'
  comment: string | null
  created_at: string
}

/** A proposed write to a protected environment (migration 14); its operations only as ciphertext. */
export interface ChangeRequestTable {
  id: string
  workspace_id: string
  requester_id: string
  project_id: string
  environment_id: string
  /** What was asked: set, bulk, delete, rollback, apply, promote. */
  kind: string
  /** JSON: keys and their base versions (never values). */
  summary: string
  /** The operations (JSON), sealed under the environment's data key; null once the request ended. */
  payload_ct: Buffer | null
  dek_id: string | null
  dek_version: number | null
  approvals_required: number
  /** `expired` is not stored: a pending request past `expires_at` is expired. */
  state: 'pending' | 'applied' | 'rejected' | 'stale'
  created_at: string
  expires_at: string
  ended_at: string | null
  ended_by: string | null
  /** Why it ended stale (keys whose version moved), or null. */
  outcome: string | null
}

/** One Owner's or Admin's approval or rejection of a change request. */
export interface ChangeRequestDecisionTable {
  request_id: string
  workspace_id: string
  user_id: string
  decision: 'approve' | 'reject'
  comment: string | null
  created_at: string
}

/** A one-time code of the CLI's browser login (PKCE, loopback redirect); only its SHA-256 is stored. */
export interface CliLoginCodeTable {
  code_hash: Buffer
  user_id: string
  /** The workspace the CLI token will belong to. */
  for_workspace: string
  /** base64url(SHA-256(code_verifier)) — S256 only. */
  code_challenge: string
  redirect_uri: string
  client_name: string
  created_at: string
  expires_at: string
  used_at: string | null
}

/** A device authorization of `coffer login --device`; device and user codes stored as SHA-256. */
export interface CliDeviceCodeTable {
  id: string
  device_code_hash: Buffer
  user_code_hash: Buffer
  client_name: string
  status: 'pending' | 'approved' | 'denied' | 'used'
  /** Seconds the CLI must wait between polls; grows by 5 on every slow_down. */
  poll_interval: number
  last_poll_at: string | null
  user_id: string | null
  for_workspace: string | null
  created_at: string
  expires_at: string
  decided_at: string | null
}

/** The whole database as Kysely sees it. */
/**
 * Authentication epochs (migration 12): bumped by triggers whenever a change can end or narrow
 * a credential's acceptance in `scope` (a workspace id, or a person's user id). See
 * src/identity/principal-cache.ts.
 */
export interface AuthEpochTable {
  scope: string
  epoch: number
}

/**
 * An environment's snapshot (migration 23, src/vault/environment-snapshots.ts): its revealed
 * list sealed as one ciphertext, served only while `built_generation` equals `generation`
 * (which the secrets tables' triggers bump, dropping `body_ct`, on every change).
 */
export interface EnvironmentSnapshotTable {
  environment_id: string
  workspace_id: string
  project_id: string
  generation: number
  built_generation: number | null
  body_ct: Buffer | null
  built_at: string | null
}

/** A workspace's webhook endpoint (migration 17); the signing secrets only as ciphertext. */
export interface WebhookEndpointTable {
  id: string
  workspace_id: string
  url: string
  /** JSON array of event names. */
  events: string
  description: string
  /** The audit log's end (seq) when the endpoint was made: it gets only later events. */
  from_seq: number
  secret_version: number
  secret_ct: Buffer
  previous_secret_version: number | null
  previous_secret_ct: Buffer | null
  previous_until: string | null
  failing_since: string | null
  disabled_at: string | null
  disabled_reason: string | null
  created_at: string
  created_by: string
}

/** The last integrated audit entry of a workspace turned into webhook deliveries. */
export interface WebhookCursorTable {
  workspace_id: string
  seq: number
}

/** One webhook message to one endpoint: the queue and its delivery log. */
export interface WebhookDeliveryTable {
  id: string
  workspace_id: string
  endpoint_id: string
  event: string
  /** The JSON body sent. */
  payload: string
  audit_seq: number | null
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  next_attempt_at: string
  last_status: number | null
  last_error: string | null
  last_latency_ms: number | null
  last_attempt_at: string | null
  delivered_at: string | null
  lease_holder: string | null
  lease_until: string | null
  created_at: string
}

/** A way to make short-lived PostgreSQL login roles (migration 18); the admin URL only as ciphertext. */
export interface DbRoleTable {
  id: string
  workspace_id: string
  project_id: string
  environment_id: string
  name: string
  admin_url_ct: Buffer
  /** host:port/database, for people (no credentials). */
  target: string
  creation_sql: string
  default_ttl_seconds: number
  max_ttl_seconds: number
  created_at: string
  created_by: string
  /** Deleted: kept until its login roles are dropped. */
  deleted_at: string | null
}

/** A login role made from a db_roles row, until it is dropped (never its password). */
export interface DbLeaseTable {
  id: string
  workspace_id: string
  role_id: string
  username: string
  expires_at: string
  dropped_at: string | null
  drop_error: string | null
  dropper: string | null
  dropper_until: string | null
  created_at: string
  created_by: string
}

/** A workspace's AWS external ID version (migration 20); the ID is derived, never stored. */
export interface AwsExternalIdTable {
  workspace_id: string
  version: number
  rotated_at: string
  rotated_by: string
}

/** An IAM role Coffer may assume for an environment (migration 20); no credentials of it are stored. */
export interface AwsRoleTable {
  id: string
  workspace_id: string
  project_id: string
  environment_id: string
  name: string
  role_arn: string
  region: string | null
  max_duration_seconds: number
  created_at: string
  created_by: string
}

/** A third-party OAuth app of a workspace (migration 21); the client secret only as ciphertext. */
export interface ConnectionTable {
  id: string
  workspace_id: string
  name: string
  authorize_url: string
  token_url: string
  client_id: string
  client_secret_ct: Buffer
  token_auth: 'client_secret_basic' | 'client_secret_post'
  /** Space-separated, as OAuth writes them. */
  scopes: string
  api_base: string
  /** JSON array of `METHOD /path-pattern` rules. */
  allow_rules: string
  created_at: string
  created_by: string
}

/** The tokens of one connection for the app (`owner` 'app') or one member (`owner` their user id); sealed. */
export interface ConnectionLinkTable {
  id: string
  workspace_id: string
  connection_id: string
  kind: 'app' | 'personal'
  owner: string
  token_version: number
  access_token_ct: Buffer
  refresh_token_ct: Buffer | null
  expires_at: string | null
  scopes: string
  status: 'connected' | 'needs_reconnect'
  linked_at: string
  linked_by: string
  refreshed_at: string | null
  last_error: string | null
  /** The lease of the node refreshing the link ahead of its expiry. */
  refresher: string | null
  refresher_until: string | null
}

/** An authorization flow under way: the state's hash, the PKCE verifier sealed. */
export interface ConnectionStateTable {
  state_hash: string
  workspace_id: string
  connection_id: string
  kind: 'app' | 'personal'
  owner: string
  started_by: string
  verifier_ct: Buffer
  expires_at: string
  created_at: string
}

export interface Database {
  coffer_schema: SchemaTable
  meta: MetaTable
  workspaces: WorkspaceTable
  users: UserTable
  sessions: SessionTable
  email_links: EmailLinkTable
  user_identities: UserIdentityTable
  oidc_flows: OidcFlowTable
  memberships: MembershipTable
  tokens: TokenTable
  projects: ProjectTable
  environments: EnvironmentTable
  project_members: ProjectMemberTable
  environment_grants: EnvironmentGrantTable
  invitations: InvitationTable
  service_tokens: ServiceTokenTable
  machine_identities: MachineIdentityTable
  machine_tokens: MachineTokenTable
  machine_oidc_rules: MachineOidcRuleTable
  data_keys: DataKeyTable
  key_jobs: KeyJobTable
  secrets: SecretTable
  secret_versions: SecretVersionTable
  personal_overrides: PersonalOverrideTable
  audit_heads: AuditHeadTable
  audit_entries: AuditEntryTable
  audit_queue: AuditQueueTable
  audit_nodes: AuditNodeTable
  audit_checkpoints: AuditCheckpointTable
  workspace_deletions: WorkspaceDeletionTable
  breakglass_requests: BreakGlassRequestTable
  breakglass_decisions: BreakGlassDecisionTable
  change_requests: ChangeRequestTable
  change_request_decisions: ChangeRequestDecisionTable
  cli_login_codes: CliLoginCodeTable
  cli_device_codes: CliDeviceCodeTable
  auth_epochs: AuthEpochTable
  environment_snapshots: EnvironmentSnapshotTable
  webhook_endpoints: WebhookEndpointTable
  webhook_cursors: WebhookCursorTable
  webhook_deliveries: WebhookDeliveryTable
  db_roles: DbRoleTable
  db_leases: DbLeaseTable
  aws_external_ids: AwsExternalIdTable
  aws_roles: AwsRoleTable
  connections: ConnectionTable
  connection_links: ConnectionLinkTable
  connection_states: ConnectionStateTable
}

/** A database handle or an open transaction: storage functions accept either. */
export type Executor = Kysely<Database> | Transaction<Database>
