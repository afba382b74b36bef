export const KiB = 1024;
export const MiB = 1024 * 1024;
/** Megabytes (10^6 bytes), the unit of the throughput figures. */
export const MB = 1_000_000;
