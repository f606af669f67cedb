import { createRequire } from 'node:module'
import type { Transporter } from 'nodemailer'
import type NodemailerModule from 'nodemailer'

/** One plain-text mail. */
export interface MailMessage {
  to: string
  subject: string
  text: string
}

/** Sends mail, or knows that it cannot. */
export interface Mailer {
  /** False when no SMTP server is configured: links are then issued by an Owner/Admin. */
  readonly enabled: boolean
  /** Sends `msg`; rejects when the SMTP server refuses it. */
  send(msg: MailMessage): Promise<void>
  close(): void
}

/** Mail over SMTP with nodemailer (COFFER_SMTP_URL, COFFER_MAIL_FROM). */
export class SmtpMailer implements Mailer {
  readonly enabled = true
  readonly #transport: Transporter
  readonly #from: string
  constructor(url: string, from: string) {
    // @NOTE nodemailer is loaded only when mail is on (COFFER_SMTP_URL).
    const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof NodemailerModule
    this.#transport = nodemailer.createTransport(url)
    this.#from = from
  }
  async send(msg: MailMessage): Promise<void> {
    await this.#transport.sendMail({ from: this.#from, to: msg.to, subject: msg.subject, text: msg.text })
  }
  close(): void {
    this.#transport.close()
  }
  toJSON(): string {
    return '[SmtpMailer]'
  }
}

/** No SMTP server: nothing can be sent. */
export class DisabledMailer implements Mailer {
  readonly enabled = false
  async send(): Promise<void> {
    throw new Error('mail is disabled (COFFER_SMTP_URL is not set)')
  }
  close(): void {}
}

/** The mailer for the configured SMTP URL, or a disabled one. */
export function createMailer(smtpUrl: string | undefined, from: string): Mailer {
  return smtpUrl ? new SmtpMailer(smtpUrl, from) : new DisabledMailer()
}
