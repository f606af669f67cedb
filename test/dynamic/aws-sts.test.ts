// The STS caller's edges, without AWS (unreachable here): session names within STS's alphabet
// and length, which STS messages may be passed on, the server without AWS credentials of its
// own, STS unreachable, and the AWS settings' validation. The full AssumeRole exchange is
// tested against the STS stand-in in test/server/aws-roles.test.ts.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { safeStsMessage, sessionNameOf, StsRoleAssumer } from '../../src/dynamic/aws-sts.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'

const STS_NAME = /^[\w+=,.@-]{2,64}$/

test('session names: STS’s characters only, 2 to 64 of them', () => {
  assert.equal(sessionNameOf('coffer-ana@example.com'), 'coffer-ana@example.com')
  assert.equal(sessionNameOf('coffer-machine-ci deploy/prod'), 'coffer-machine-ci-deploy-prod')
  assert.match(sessionNameOf('coffer-zoë+tag@exämple.com'), STS_NAME)
  assert.equal(sessionNameOf(`coffer-${'a'.repeat(100)}@example.com`).length, 64)
  assert.match(sessionNameOf('x'), STS_NAME)
  assert.match(sessionNameOf(''), STS_NAME)
})

test('STS messages are passed on only when they hold nothing like a key or the external ID', () => {
  const id = 'coffer-0123456789abcdef0123456789abcdef01234567'
  const denied =
    'User: arn:aws:iam::111122223333:user/coffer is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444455556666:role/x'
  assert.equal(safeStsMessage(denied, id), denied)
  assert.equal(safeStsMessage(`${denied} with external id ${id}`, id), undefined)
  assert.equal(safeStsMessage('The security token ASIAABCDEFGHIJKLMNOP is expired', id), undefined)
  assert.equal(safeStsMessage(`Signature over ${'A'.repeat(20)}${'b9+/'.repeat(10)}`, id), undefined)
  assert.equal(safeStsMessage('', id), undefined)
  assert.equal(safeStsMessage(undefined, id), undefined)
  assert.ok((safeStsMessage('x '.repeat(500), id) ?? '').length <= 400)
})

test('without AWS credentials of its own the server answers ERR_AWS_NO_CREDENTIALS; an unreachable STS is ERR_AWS_ASSUME_ROLE', async () => {
  // Nothing for the AWS SDK's default chain to find: no variables, no files, no instance role.
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k]
  Object.assign(process.env, { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' })
  // A port that refuses connections: taken, then freed.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
  const input = { roleArn: 'arn:aws:iam::444455556666:role/x', externalId: 'coffer-x', sessionName: 'coffer-test', durationSeconds: 900 }
  const none = new StsRoleAssumer({ stsRegion: 'us-east-1', stsEndpoint: `http://127.0.0.1:${port}` })
  await assert.rejects(none.assumeRole(input), { code: 'ERR_AWS_NO_CREDENTIALS', status: 503 })

  process.env.AWS_ACCESS_KEY_ID = 'AKIAEXAMPLEEXAMPLE00'
  process.env.AWS_SECRET_ACCESS_KEY = 'not-a-real-secret-for-a-closed-port'
  const closed = new StsRoleAssumer({ stsRegion: 'us-east-1', stsEndpoint: `http://127.0.0.1:${port}` })
  await assert.rejects(closed.assumeRole(input), (err: { code?: string; status?: number; message: string }) => {
    assert.equal(err.code, 'ERR_AWS_ASSUME_ROLE')
    assert.equal(err.status, 502)
    assert.match(err.message, /could not be reached/)
    assert.ok(!err.message.includes('not-a-real-secret'))
    return true
  })
})

test('AWS settings: the principal must be an IAM ARN, the endpoint an http(s) URL, the region a region', () => {
  const cfg = (env: Record<string, string>) => buildConfig(readEnv({ COFFER_DATA_DIR: '/tmp/coffer-aws-config', ...env }))
  assert.deepEqual(cfg({}).aws, { stsRegion: 'us-east-1' })
  assert.deepEqual(
    cfg({
      COFFER_AWS_PRINCIPAL_ARN: 'arn:aws:iam::111122223333:role/coffer-server',
      COFFER_AWS_STS_ENDPOINT: 'https://sts.eu-west-1.amazonaws.com',
      AWS_REGION: 'eu-west-1',
    }).aws,
    {
      stsRegion: 'eu-west-1',
      principalArn: 'arn:aws:iam::111122223333:role/coffer-server',
      stsEndpoint: 'https://sts.eu-west-1.amazonaws.com',
    },
  )
  for (const [name, value] of [
    ['COFFER_AWS_PRINCIPAL_ARN', 'arn:aws:s3:::bucket'],
    ['COFFER_AWS_PRINCIPAL_ARN', '111122223333'],
    ['COFFER_AWS_STS_ENDPOINT', 'ftp://sts.example'],
    ['COFFER_AWS_STS_ENDPOINT', 'not a url'],
  ] as const)
    assert.throws(() => cfg({ [name]: value }), { code: 'ERR_CONFIG' }, `${name}=${value}`)
  // A region that is not one stops start-up only where roles are assumed; elsewhere it may be another program's.
  assert.throws(() => cfg({ COFFER_AWS_REGION: 'moon', COFFER_AWS_STS_ENDPOINT: 'https://sts.example' }), { code: 'ERR_CONFIG' })
  assert.equal(cfg({ AWS_REGION: 'moon' }).aws.stsRegion, 'us-east-1')
})
