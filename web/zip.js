// A ZIP archive built in the browser: every file stored as it is (no compression: PNGs and
// JPEGs would not shrink), so the format needs only its headers and a CRC-32 per file.

// The CRC-32 of ZIP (and PNG): polynomial 0xEDB88320, one table entry per byte value.
const CRC_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let value = byte;
  for (let bit = 0; bit < 8; bit += 1) {
    value = value & 1 ? 0xedb88320 ^ (value >>> 1) : value >>> 1;
  }
  return value >>> 0;
});

export function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const UTF8_NAMES = 0x0800; // general purpose flag bit 11: names are UTF-8
const STORED = 0;
const VERSION = 20; // 2.0: what a reader needs for stored files in folders

// MS-DOS time and date, as every ZIP header carries them.
function dosDateTime(date) {
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  const day = ((date.getFullYear() - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return { time, day };
}

function header(size, fill) {
  const bytes = new Uint8Array(size);
  fill(new DataView(bytes.buffer));
  return bytes;
}

// `files` are {name, bytes: Uint8Array}; the answer is the archive as a Blob.
export function storedZip(files, date = new Date()) {
  const { time, day } = dosDateTime(date);
  const encoder = new TextEncoder();
  const parts = [];
  const directory = [];
  let offset = 0;
  for (const { name, bytes } of files) {
    const encodedName = encoder.encode(name);
    const crc = crc32(bytes);
    // The fields a local header and its central directory entry share, from "version needed".
    const common = (view, at) => {
      view.setUint16(at, VERSION, true);
      view.setUint16(at + 2, UTF8_NAMES, true);
      view.setUint16(at + 4, STORED, true);
      view.setUint16(at + 6, time, true);
      view.setUint16(at + 8, day, true);
      view.setUint32(at + 10, crc, true);
      view.setUint32(at + 14, bytes.length, true); // compressed size: stored, so the same
      view.setUint32(at + 18, bytes.length, true);
      view.setUint16(at + 22, encodedName.length, true);
    };
    const local = header(30, (view) => {
      view.setUint32(0, 0x04034b50, true);
      common(view, 4);
    });
    directory.push(
      header(46, (view) => {
        view.setUint32(0, 0x02014b50, true);
        view.setUint16(4, VERSION, true); // made by
        common(view, 6);
        view.setUint32(42, offset, true); // where its local header starts
      }),
      encodedName,
    );
    parts.push(local, encodedName, bytes);
    offset += local.length + encodedName.length + bytes.length;
  }
  const directorySize = directory.reduce((sum, part) => sum + part.length, 0);
  const end = header(22, (view) => {
    view.setUint32(0, 0x06054b50, true);
    view.setUint16(8, files.length, true); // entries on this disk
    view.setUint16(10, files.length, true); // entries in all
    view.setUint32(12, directorySize, true);
    view.setUint32(16, offset, true); // where the central directory starts
  });
  return new Blob([...parts, ...directory, end], { type: "application/zip" });
}
