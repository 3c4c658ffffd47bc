import { describe, expect, it } from "vitest";

import { shortId } from "./format";

describe("shortId", () => {
  it("tells apart jobs created in the same millisecond", () => {
    // Two UUIDv7 ids with the same time stamp differ only after the first 12 digits.
    const first = "019ac3f2-1b2c-7d4e-8f00-1234abcd5678";
    const second = "019ac3f2-1b2c-7a11-9b22-00aa55ff9876";
    expect(shortId(first)).toBe("abcd5678");
    expect(shortId(second)).toBe("55ff9876");
    expect(shortId(first)).not.toBe(shortId(second));
  });
});
