import { randomUUID } from 'node:crypto'
import { NotFoundError, ValidationError } from '../errors.js'
import type { Executor } from '../storage/database.js'

// The OIDC issuers a machine identity trusts (docs/ci-federation.md). A rule names one issuer
// URL, the audiences it accepts and claim conditions that must all match; a workload's ID
// token that satisfies one rule of the identity is exchanged for the identity's access token
// (oidc-token-check.ts). Rules belong to the identity's workspace and are managed by its
// Owners and Admins.

/** One trust rule of a machine identity. */
export interface OidcRule {
  id: string
  machineId: string
  /** Compared exactly with the token's `iss` (and with the discovery document's `issuer`). */
  issuer: string
  /** The token's `aud` must name one of them. */
  audiences: string[]
  /** Claim name → exact value or `*` glob; every one must match. */
  claims: Record<string, string>
  createdBy: string
  createdAt: string
}

type Row = {
  id: string
  machine_id: string
  issuer: string
  audiences: string
  claims: string
  created_by: string
  created_at: string
}
const COLUMNS = ['id', 'machine_id', 'issuer', 'audiences', 'claims', 'created_by', 'created_at'] as const

function toRule(r: Row): OidcRule {
  return {
    id: r.id,
    machineId: r.machine_id,
    issuer: r.issuer,
    audiences: JSON.parse(r.audiences) as string[],
    claims: JSON.parse(r.claims) as Record<string, string>,
    createdBy: r.created_by,
    createdAt: r.created_at,
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * The issuer URL as a rule keeps it, or ValidationError: https (plain http only for a
 * loopback issuer, for development and tests), no credentials, query or fragment. Whether
 * its address may be reached is the outbound guard's decision (ops/outbound.ts).
 */
export function checkIssuer(raw: string, path = 'issuer'): string {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new ValidationError('The OIDC issuer must be a URL.', [{ path, message: 'not a URL' }])
  }
  const ok =
    (u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname))) &&
    !u.username &&
    !u.password &&
    !u.search &&
    !u.hash &&
    !raw.includes('?') &&
    !raw.includes('#')
  if (!ok)
    throw new ValidationError('The OIDC issuer must be an https URL without credentials, query or fragment (http only on loopback).', [
      { path, message: 'https URL without credentials, query or fragment' },
    ])
  return raw
}

/** The discovery document's URL of an issuer (OpenID Connect Discovery 1.0 §4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
}

/** Checks claim conditions: a condition that is only `*` (or empty) would match anything. */
function checkClaims(claims: Record<string, string>, path: string): Record<string, string> {
  for (const [name, pattern] of Object.entries(claims))
    if (pattern.replaceAll('*', '') === '')
      throw new ValidationError(`The claim condition on ${name} matches every value.`, [
        { path: `${path}.${name}`, message: 'a condition that matches every value' },
      ])
  return claims
}

/** Adds trust rules to a machine identity of the workspace (NotFoundError when it is not there or revoked). */
export async function addOidcRules(
  db: Executor,
  input: {
    workspaceId: string
    machineId: string
    rules: ReadonlyArray<{ issuer: string; audiences: string[]; claims: Record<string, string> }>
    createdBy: string
    now: Date
  },
): Promise<OidcRule[]> {
  const m = await db
    .selectFrom('machine_identities')
    .select(['id', 'revoked_at'])
    .where('workspace_id', '=', input.workspaceId)
    .where('id', '=', input.machineId)
    .executeTakeFirst()
  if (!m || m.revoked_at) throw new NotFoundError('machine identity')
  const rows = input.rules.map((r, i) => ({
    id: randomUUID(),
    workspace_id: input.workspaceId,
    machine_id: input.machineId,
    issuer: checkIssuer(r.issuer, `rules.${i}.issuer`),
    audiences: JSON.stringify([...new Set(r.audiences)]),
    claims: JSON.stringify(checkClaims(r.claims, `rules.${i}.claims`)),
    created_by: input.createdBy,
    created_at: input.now.toISOString(),
  }))
  if (rows.length) await db.insertInto('machine_oidc_rules').values(rows).execute()
  return rows.map(toRule)
}

/** The trust rules of one machine identity of the workspace, oldest first. */
export async function listOidcRules(db: Executor, workspaceId: string, machineId: string): Promise<OidcRule[]> {
  return (
    await db
      .selectFrom('machine_oidc_rules')
      .select(COLUMNS)
      .where('workspace_id', '=', workspaceId)
      .where('machine_id', '=', machineId)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
  ).map(toRule)
}

/** Removes one trust rule (NotFoundError when the identity of the workspace has no such rule). */
export async function removeOidcRule(db: Executor, workspaceId: string, machineId: string, ruleId: string): Promise<OidcRule> {
  const r = await db
    .selectFrom('machine_oidc_rules')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .where('machine_id', '=', machineId)
    .where('id', '=', ruleId)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('trust rule')
  await db.deleteFrom('machine_oidc_rules').where('id', '=', ruleId).execute()
  return toRule(r)
}

/** Every trust rule of a machine identity, whatever its workspace (system scope: the OIDC exchange). */
export async function oidcRulesOf(db: Executor, machineId: string): Promise<OidcRule[]> {
  return (
    await db
      .selectFrom('machine_oidc_rules')
      .select(COLUMNS)
      .where('machine_id', '=', machineId)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
  ).map(toRule)
}

/** True when `value` matches `pattern`: exact, or `*` standing for any run of characters. */
export function globMatches(pattern: string, value: string): boolean {
  const parts = pattern.split('*')
  if (parts.length === 1) return pattern === value
  const first = parts[0]!
  const last = parts[parts.length - 1]!
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false
  let at = first.length
  const end = value.length - last.length
  for (const mid of parts.slice(1, -1)) {
    const i = value.indexOf(mid, at)
    if (i < 0 || i + mid.length > end) return false
    at = i + mid.length
  }
  return true
}

/**
 * True when the claim's value matches the condition: a string, number or boolean as written;
 * a list when one of its elements does. An absent claim, or an object, never matches.
 */
export function claimMatches(pattern: string, value: unknown): boolean {
  if (typeof value === 'string') return globMatches(pattern, value)
  if (typeof value === 'number' || typeof value === 'boolean') return globMatches(pattern, String(value))
  if (Array.isArray(value)) return value.some((v) => (typeof v === 'string' || typeof v === 'number') && globMatches(pattern, String(v)))
  return false
}
