import { UsageError } from "./errors.js";

/**
 * A new password: asked twice at a terminal (not echoed), or read from stdin when it is not a terminal —
 * one line, or two identical lines. Never from an argument, where `ps` and shell history would keep it.
 */
export async function readNewPassword(
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stderr,
): Promise<string> {
  const password = input.isTTY ? await promptTwice(input, output) : await fromPipe(input);
  if (password.length < 8) throw new UsageError("the password must have at least 8 characters");
  return password;
}

async function fromPipe(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.from(chunk as Buffer));
  const lines = Buffer.concat(chunks).toString("utf8").split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0 || lines[0] === "")
    throw new UsageError("no password on stdin: pipe one line (or two identical lines)");
  if (lines.length > 2 || (lines.length === 2 && lines[0] !== lines[1])) {
    throw new UsageError("stdin must hold one password line, or two identical lines");
  }
  return lines[0] as string;
}

async function promptTwice(input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<string> {
  const first = await promptHidden("New password: ", input, output);
  const second = await promptHidden("Repeat it: ", input, output);
  if (first !== second) throw new UsageError("the two passwords differ");
  return first;
}

/** Reads one line in raw mode so nothing typed is echoed. */
function promptHidden(question: string, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<string> {
  output.write(question);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = "";
    const done = (error?: Error) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      output.write("\n");
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString("utf8")) {
        if (char === "\r" || char === "\n") return done();
        if (char === "\u0003") return done(new UsageError("cancelled"));
        if (char === "\u007f" || char === "\b") typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    input.on("data", onData);
  });
}
