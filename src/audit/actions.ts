/**
 * Every action the audit log can record, in one table. `AuditEvent.action` is typed by it, so
 * an action not listed here does not compile; an entry's action names what happened (a past
 * event), unlike the policy actions in src/access/policy.ts, which name what a route may do.
 * @NOTE entries already written keep their action forever: rename or remove one only with a
 * plan for the entries (and exports) that carry it.
 */
export const AUDIT_ACTIONS = [
  // Sign-in, sign-out and the links that verify an address or reset a password.
  'auth.sign-in',
  'auth.sign-in-failed',
  'auth.sign-out',
  'auth.password-change',
  'auth.password-reset-requested',
  'auth.password-reset',
  'auth.email-verified',
  'auth.link-issued',
  // Browser sessions and CLI logins.
  'session.revoke',
  'session.revoke-all',
  'cli.login.approve',
  'cli.login.deny',
  // A person's own account.
  'account.export',
  'account.delete',
  // Workspaces, their members and invitations.
  'workspace.create',
  'workspace.delete',
  'member.add',
  'member.role_change',
  'member.remove',
  'member.leave',
  'invitation.create',
  'invitation.revoke',
  'invitation.accept',
  // Projects, environments and who may reach them.
  'project.create',
  'project.rename',
  'project.delete',
  'project_member.set',
  'project_member.remove',
  'environment.create',
  'environment.rename',
  'environment.delete',
  'environment.restrict',
  'environment_grant.set',
  'environment_grant.remove',
  'environment.seal',
  'environment.unseal',
  'environment.protect',
  'environment.unprotect',
  // Secrets: changes (before/after as fingerprints) and sensitive reads.
  'secret.create',
  'secret.update',
  'secret.delete',
  'secret.restore',
  'secret.rollback',
  'secret.reveal',
  'secret.reveal_history',
  'secrets.reveal_all',
  // Personal overrides (a member's own value; key and version only, never a fingerprint) and
  // an environment's imports and override setting.
  'secret.personal_set',
  'secret.personal_unset',
  'environment.imports_set',
  'environment.personal_overrides_set',
  // A pasted .env previewed or applied, and keys copied between environments (one summary
  // entry each; every secret they change has its own secret.* entry too).
  'secrets.apply',
  'secrets.copy',
  // Two environments compared with their values shown (diff --reveal), and keys promoted from one to another.
  'secrets.diff_reveal',
  'secrets.promote',
  // Tokens and machine identities.
  'token.create',
  'token.revoke',
  'service_token.create',
  'service_token.revoke',
  'machine.create',
  'machine.revoke',
  'machine.token.issue',
  // OIDC federation: trust rules added to and removed from a machine identity, and a refused ID-token exchange (with the failed check).
  'machine.oidc.trust',
  'machine.oidc.untrust',
  'machine.oidc.refused',
  // Data keys: rotation, resealing and root-key rewraps.
  'key.rotated',
  'key.resealed',
  'key.reseal_failed',
  'keys.root_rewrapped',
  // Break-glass requests, decisions and grants.
  'breakglass.request',
  'breakglass.approve',
  'breakglass.deny',
  'breakglass.activate',
  'breakglass.revoke',
  'breakglass.expired',
  'breakglass.use',
  // Change requests of protected environments: proposed, decided, applied (or found stale), revealed.
  'change.request',
  'change.approve',
  'change.reject',
  'change.apply',
  'change.stale',
  'change.expired',
  'change.reveal',
  // The audit log itself.
  'audit.checkpoint',
  // Backups: taken (a read of every workspace's ciphertext) and restored (the log continues from the backup's point).
  'backup.create',
  'backup.restore',
  // Outbound webhooks: endpoints made, deleted, re-keyed, enabled, disabled for failing, and messages sent by hand.
  'webhook.create',
  'webhook.delete',
  'webhook.rotate_secret',
  'webhook.enable',
  'webhook.disabled',
  'webhook.redeliver',
  'webhook.test',
  // Dynamic database credentials: ways to make them, each issuance, each login role dropped.
  'db.role_create',
  'db.role_delete',
  'db.credentials_issue',
  'db.credentials_dropped',
  // AWS role assumption: the external ID shown (and the template carrying it), rotated; roles registered, deleted; each STS session issued.
  'aws.external_id_read',
  'aws.external_id_rotate',
  'aws.role_create',
  'aws.role_delete',
  'aws.credentials_issue',
  // Third-party OAuth connections: made and deleted, a flow started, the app connected, a member
  // linked or unlinked, a token refreshed or not (then it needs re-connecting), each relayed call.
  'connection.create',
  'connection.delete',
  'connection.authorize',
  'connection.connect',
  'connection.link',
  'connection.unlink',
  'connection.refresh',
  'connection.refresh_failed',
  'connection.relay',
] as const

/** One action the audit log records; an unknown action is a type error. */
export type AuditAction = (typeof AUDIT_ACTIONS)[number]
