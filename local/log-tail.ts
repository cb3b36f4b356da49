// Follows a log file the way `tail -F` does: new lines as they are written, surviving truncation
// (copytruncate, `: > file`) and rotation (rename + a new file at the path).
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export class LogTail {
  private fd: number | undefined;
  private ino: number | undefined;
  private position = 0;
  private partial = '';
  // A read can end inside a multi-byte character: the decoder keeps the incomplete bytes.
  private decoder = new StringDecoder('utf8');

  /** @param fromStart read what the file already holds (default: only what is written from now on) */
  constructor(
    readonly path: string,
    private readonly fromStart = false,
  ) {}

  /** Complete lines written since the last call. */
  read(): string[] {
    let stat;
    try {
      stat = statSync(this.path);
    } catch {
      return []; // not there (yet, or between rename and re-create)
    }
    const lines: string[] = [];
    if (this.fd === undefined || stat.ino !== this.ino) {
      if (this.fd !== undefined) {
        // Rotated: finish the old file first, then move to the new one.
        lines.push(...this.drain());
        closeSync(this.fd);
      }
      const first = this.fd === undefined;
      this.fd = openSync(this.path, 'r');
      this.ino = stat.ino;
      this.position = first && !this.fromStart ? fstatSync(this.fd).size : 0;
      this.partial = '';
      this.decoder = new StringDecoder('utf8');
    } else if (stat.size < this.position) {
      // Truncated in place: start over at the beginning.
      this.position = 0;
      this.partial = '';
      this.decoder = new StringDecoder('utf8');
    }
    lines.push(...this.drain());
    return lines;
  }

  private drain(): string[] {
    const lines: string[] = [];
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(this.fd!, buffer, 0, buffer.length, this.position);
      if (n <= 0) break;
      this.position += n;
      this.partial += this.decoder.write(buffer.subarray(0, n));
      let nl: number;
      while ((nl = this.partial.indexOf('\n')) >= 0) {
        lines.push(this.partial.slice(0, nl));
        this.partial = this.partial.slice(nl + 1);
      }
    }
    return lines;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
