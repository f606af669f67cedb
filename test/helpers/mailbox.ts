import { SMTPServer } from 'smtp-server'
import type { AddressInfo } from 'node:net'

/** One mail as the test SMTP server received it. */
export interface ReceivedMail {
  to: string[]
  subject: string
  text: string
}

function decodeQuotedPrintable(s: string): string {
  const bytes = Buffer.from(
    s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  )
  return bytes.toString('utf8')
}

/** Splits a raw single-part message into headers and a decoded body. */
function parse(raw: string, to: string[]): ReceivedMail {
  const at = raw.indexOf('\r\n\r\n')
  const head = raw.slice(0, at).replace(/\r\n[ \t]+/g, ' ')
  let body = raw.slice(at + 4)
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? ''
  const cte = header('Content-Transfer-Encoding').toLowerCase()
  if (cte === 'quoted-printable') body = decodeQuotedPrintable(body)
  else if (cte === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  return { to, subject: header('Subject'), text: body.replace(/\r\n/g, '\n') }
}

/** A real SMTP server on a free loopback port that keeps every mail it receives. */
export interface Mailbox {
  url: string
  mails: ReceivedMail[]
  /** Waits (up to `ms`) for a mail to `to` that `match` accepts, and returns it. */
  waitFor(to: string, match?: (m: ReceivedMail) => boolean, ms?: number): Promise<ReceivedMail>
  /** The first link under `path` in a mail. */
  linkIn(mail: ReceivedMail, path: string): string
  close(): Promise<void>
}

/** Starts the mailbox (smtp-server, no TLS, any sender accepted). */
export async function startMailbox(): Promise<Mailbox> {
  const mails: ReceivedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        mails.push(
          parse(
            Buffer.concat(chunks).toString('latin1'),
            session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          ),
        )
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.server.address() as AddressInfo).port
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    async waitFor(to, match = () => true, ms = 5000) {
      const end = Date.now() + ms
      for (;;) {
        const m = mails.find((x) => x.to.includes(to.toLowerCase()) && match(x))
        if (m) return m
        if (Date.now() > end) throw new Error(`no mail to ${to} within ${ms} ms`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    linkIn(mail, path) {
      const m = new RegExp(`https?://[^\\s]+${path.replace(/[/.]/g, '\\$&')}\\?token=[A-Za-z0-9_-]+`).exec(mail.text)
      if (!m) throw new Error(`no ${path} link in the mail`)
      return m[0]
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
