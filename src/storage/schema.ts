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
}

export interface UserTable {
  id: string
  email: string
  name: string
  created_at: string
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
}

export interface DataKeyTable {
  id: string
  version: number
  workspace_id: string
  project_id: string
  environment_id: string
  wrapped: Buffer
  root_key_id: string
  state: 'primary' | 'active' | 'retired'
  created_at: string
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
}

export interface AuditHeadTable {
  workspace_id: string
  seq: number
  hash: Buffer
  /** The Merkle tree's right edge: peak hashes, leftmost first (see src/audit/tree-store.ts). */
  peaks: Buffer
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

/** The whole database as Kysely sees it. */
export interface Database {
  coffer_schema: SchemaTable
  meta: MetaTable
  workspaces: WorkspaceTable
  users: UserTable
  memberships: MembershipTable
  tokens: TokenTable
  projects: ProjectTable
  environments: EnvironmentTable
  data_keys: DataKeyTable
  secrets: SecretTable
  secret_versions: SecretVersionTable
  audit_heads: AuditHeadTable
  audit_entries: AuditEntryTable
  audit_nodes: AuditNodeTable
  audit_checkpoints: AuditCheckpointTable
}
