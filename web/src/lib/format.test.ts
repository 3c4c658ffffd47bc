import { describe, expect, it } from "vitest";

import { relativeTime, shortId } from "./format";

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

describe("relativeTime", () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  it("says how long ago, or how long until a time to come", () => {
    expect(relativeTime("2026-03-01T11:59:58Z", now)).toBe("just now");
    expect(relativeTime("2026-03-01T11:59:30Z", now)).toBe("30 s ago");
    expect(relativeTime("2026-03-01T09:00:00Z", now)).toBe("3 h ago");
    expect(relativeTime("2026-03-31T12:00:00Z", now)).toBe("in 30 d");
    expect(relativeTime("2026-03-01T12:10:00Z", now)).toBe("in 10 min");
  });
});
