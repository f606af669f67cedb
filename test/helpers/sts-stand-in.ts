import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

// A local stand-in for AWS STS: AWS is unreachable from here, so the tests point Coffer's STS
// endpoint (COFFER_AWS_STS_ENDPOINT) at this server. It answers AssumeRole as STS does (the
// AWS Query protocol: a form body, an XML answer), and it checks what STS would:
// - the request's SigV4 signature, recomputed here from the canonical request with the test's
//   access key and secret (an independent implementation, not the SDK's signer), and its date;
// - that the role ARN is one it knows, and that its trust policy's `sts:ExternalId` equals
//   the ExternalId sent (AccessDenied otherwise, with STS's wording);
// - that DurationSeconds is from 900 to 3600 and at most the role's MaxSessionDuration, and
//   that RoleSessionName uses STS's alphabet and length.
// Issued credentials are random and expire after DurationSeconds; the stand-in remembers them
// so that tests can look for them where they must not be.

/** A role the stand-in knows: the external ID its trust policy requires, and its longest session. */
export interface StandInRole {
  externalId: string
  maxSessionSeconds?: number
}

/** What the stand-in received (after the signature check). */
export interface StandInRequest {
  readonly params: Record<string, string>
  readonly status: number
  readonly code?: string
}

export interface StsStandIn {
  readonly url: string
  /** The key the stand-in verifies signatures with; change `secretAccessKey` to see a signature refused. */
  readonly keys: { accessKeyId: string; secretAccessKey: string }
  readonly region: string
  readonly roles: Map<string, StandInRole>
  readonly requests: StandInRequest[]
  /** Every set of credentials handed out. */
  readonly issued: Array<{ accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: string }>
  close(): Promise<void>
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex')
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest()

/** RFC 3986 encoding as SigV4 wants it. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/**
 * Recomputes the SigV4 signature of `req` (AWS Signature Version 4, header form) and says
 * whether it matches, or why not.
 */
export function verifySigV4(
  req: { method: string; url: string; headers: IncomingMessage['headers'] },
  body: Buffer,
  keys: { accessKeyId: string; secretAccessKey: string },
  expect: { region: string; service: string; now: Date },
): { ok: true } | { ok: false; code: string; message: string } {
  const auth = req.headers.authorization ?? ''
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    )
  if (!m) return { ok: false, code: 'IncompleteSignature', message: 'The request signature is not a SigV4 header signature.' }
  const [, akid, day, region, service, signedHeaders, signature] = m as unknown as string[]
  if (akid !== keys.accessKeyId)
    return { ok: false, code: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.' }
  if (region !== expect.region || service !== expect.service)
    return { ok: false, code: 'SignatureDoesNotMatch', message: 'Credential should be scoped to a valid region and service.' }
  const amzDate = String(req.headers['x-amz-date'] ?? '')
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  if (!at || amzDate.slice(0, 8) !== day)
    return { ok: false, code: 'IncompleteSignature', message: 'X-Amz-Date is missing or does not match the scope.' }
  const when = Date.UTC(Number(at[1]), Number(at[2]) - 1, Number(at[3]), Number(at[4]), Number(at[5]), Number(at[6]))
  if (Math.abs(when - expect.now.getTime()) > 15 * 60_000)
    return { ok: false, code: 'SignatureDoesNotMatch', message: 'Signature expired.' }
  const names = signedHeaders!.split(';')
  if (!names.includes('host')) return { ok: false, code: 'SignatureDoesNotMatch', message: 'The host header must be signed.' }
  const u = new URL(req.url, 'http://stand-in')
  const query = [...u.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
  const headerLines = names.map((n) => {
    const raw = req.headers[n]
    const v = Array.isArray(raw) ? raw.join(',') : (raw ?? '')
    return `${n}:${String(v).trim().replace(/\s+/g, ' ')}\n`
  })
  const payloadHash = typeof req.headers['x-amz-content-sha256'] === 'string' ? req.headers['x-amz-content-sha256'] : sha256(body)
  if (payloadHash !== sha256(body)) return { ok: false, code: 'SignatureDoesNotMatch', message: 'The body does not match its hash.' }
  const canonical = [req.method, u.pathname || '/', query, headerLines.join(''), signedHeaders, payloadHash].join('\n')
  const scope = `${day}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n')
  const kDate = hmac(`AWS4${keys.secretAccessKey}`, day!)
  const kSigning = hmac(hmac(hmac(kDate, region!), service!), 'aws4_request')
  const want = createHmac('sha256', kSigning).update(toSign).digest()
  if (!timingSafeEqual(want, Buffer.from(signature!, 'hex')))
    return {
      ok: false,
      code: 'SignatureDoesNotMatch',
      message: 'The request signature we calculated does not match the signature you provided.',
    }
  return { ok: true }
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string)
}

function errorXml(status: number, code: string, message: string): { status: number; body: string; code: string } {
  return {
    status,
    code,
    body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(
      message,
    )}</Message></Error><RequestId>${randomBytes(16).toString('hex')}</RequestId></ErrorResponse>`,
  }
}

/** Starts the stand-in on an ephemeral loopback port. `caller` is the principal it says is calling (in AccessDenied messages). */
export async function startStsStandIn(options: { region?: string; caller?: string } = {}): Promise<StsStandIn> {
  const region = options.region ?? 'us-east-1'
  const caller = options.caller ?? 'arn:aws:iam::111122223333:user/coffer-server'
  const keys = { accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64') }
  const roles = new Map<string, StandInRole>()
  const requests: StandInRequest[] = []
  const issued: StsStandIn['issued'] = []

  function answer(req: IncomingMessage, body: Buffer): { status: number; body: string; code?: string; params: Record<string, string> } {
    const sig = verifySigV4({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, body, keys, {
      region,
      service: 'sts',
      now: new Date(),
    })
    if (!sig.ok) return { ...errorXml(403, sig.code, sig.message), params: {} }
    const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')))
    if (params.Action !== 'AssumeRole' || params.Version !== '2011-06-15')
      return { ...errorXml(400, 'InvalidAction', `Could not find operation ${params.Action} for version ${params.Version}`), params }
    const roleArn = params.RoleArn ?? ''
    const sessionName = params.RoleSessionName ?? ''
    const duration = Number(params.DurationSeconds ?? '3600')
    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName))
      return { ...errorXml(400, 'ValidationError', 'RoleSessionName must satisfy [\\w+=,.@-]{2,64}'), params }
    const role = roles.get(roleArn)
    const denied = `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`
    // As STS: an unknown role and a trust policy whose condition does not hold look alike.
    if (!role || params.ExternalId !== role.externalId) return { ...errorXml(403, 'AccessDenied', denied), params }
    if (!Number.isInteger(duration) || duration < 900 || duration > 3600 || duration > (role.maxSessionSeconds ?? 3600))
      return {
        ...errorXml(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.'),
        params,
      }
    const creds = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(96).toString('base64'),
      expiration: new Date(Date.now() + duration * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    }
    issued.push(creds)
    const account = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(roleArn)
    const assumed = `arn:aws:sts::${account?.[1] ?? '000000000000'}:assumed-role/${account?.[2] ?? 'role'}/${sessionName}`
    return {
      status: 200,
      params,
      body: `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${creds.accessKeyId}</AccessKeyId><SecretAccessKey>${xmlEscape(
        creds.secretAccessKey,
      )}</SecretAccessKey><SessionToken>${xmlEscape(creds.sessionToken)}</SessionToken><Expiration>${creds.expiration}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA${randomBytes(8).toString('hex').toUpperCase()}:${xmlEscape(
        sessionName,
      )}</AssumedRoleId><Arn>${xmlEscape(assumed)}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>${randomBytes(16).toString('hex')}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const a = answer(req, Buffer.concat(chunks))
      requests.push({ params: a.params, status: a.status, ...(a.code ? { code: a.code } : {}) })
      res.writeHead(a.status, { 'content-type': 'text/xml' })
      res.end(a.body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    keys,
    region,
    roles,
    requests,
    issued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * The environment a Coffer server process needs to call the stand-in as "its own AWS
 * credentials" through the AWS SDK's default chain (and nothing from this machine's AWS setup).
 */
export function awsEnvFor(s: StsStandIn): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: s.keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.keys.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    COFFER_AWS_STS_ENDPOINT: s.url,
  }
}
