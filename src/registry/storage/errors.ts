import { LockTimeout } from "../../fs/lock-file.js";
import type { StorageDriver } from "./driver.js";

/**
 * Domain errors of the storage layer: the disk is full, or storage cannot be reached. Drivers raise these
 * instead of bare system errors, so the HTTP edge can answer with the cause (507 or 503) rather than a 500.
 */
export class StorageFull extends Error {
  constructor(readonly reason: string) {
    super(`storage is full (${reason})`);
    this.name = "StorageFull";
  }
}

export class StorageUnavailable extends Error {
  constructor(readonly reason: string) {
    super(`storage is unavailable (${reason})`);
    this.name = "StorageUnavailable";
  }
}

const fullCodes = new Set(["ENOSPC", "EDQUOT"]);
const unavailableCodes = new Set(["EROFS", "EIO", "ENOTCONN", "ESTALE", "EACCES", "EPERM", "EMFILE", "ENFILE"]);

/** The typed form of a system error from storage; anything else (a client gone, a RegistryError) as it is. */
export function typedStorageError(error: unknown): unknown {
  if (error instanceof LockTimeout) return new StorageUnavailable("a storage lock is held too long by another process");
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return error;
  if (fullCodes.has(code)) return new StorageFull(`${code}: no space left on the storage device`);
  if (unavailableCodes.has(code)) return new StorageUnavailable(`${code}: ${(error as Error).message}`);
  return error;
}

/** Wraps every operation of a driver so that the system errors it raises reach callers typed. */
export function withTypedErrors(driver: StorageDriver): StorageDriver {
  const rethrow = (error: unknown): never => {
    throw typedStorageError(error);
  };
  return {
    getContent: (path) => driver.getContent(path).catch(rethrow),
    putContent: (path, content, options) => driver.putContent(path, content, options).catch(rethrow),
    reader: (path, range) => driver.reader(path, range).catch(rethrow),
    send: (path, sink, range) => driver.send(path, sink, range).catch(rethrow),
    append: (path, offset, source, observe) => driver.append(path, offset, source, observe).catch(rethrow),
    truncate: (path, size) => driver.truncate(path, size).catch(rethrow),
    stat: (path) => driver.stat(path).catch(rethrow),
    list: (path) => driver.list(path).catch(rethrow),
    moveAndPut: (from, to, path, content) => driver.moveAndPut(from, to, path, content).catch(rethrow),
    delete: (path, options) => driver.delete(path, options).catch(rethrow),
    withLock: (key, task) => driver.withLock(key, task).catch(rethrow),
  };
}
