// A JSON payload given as its UTF-8 text instead of its value. The native server receives JSON
// payloads as text; parsing it to check it and serialising the value again to store it was a
// sixth of the server's work per JSON message (1 KiB: parse 1.4 µs, stringify 3.5 µs). A JsonText
// is checked once (valid UTF-8 and valid JSON) and stored as it came. It is bytes to the type
// system (a Uint8Array), so it passes through publish paths unchanged; the message codec stores
// it with the JSON content type, and anything that persists a MessageInput must keep the flag.
export class JsonText extends Uint8Array {
  private constructor(buffer: ArrayBufferLike, byteOffset: number, byteLength: number) {
    super(buffer as ArrayBuffer, byteOffset, byteLength);
  }

  /** The checked text as a JsonText view of the same memory (no copy). */
  static over(bytes: Uint8Array): JsonText {
    return new JsonText(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
