// Shared pieces of the virtualised lists (log lines, job steps).

import type { Virtualizer } from "@tanstack/react-virtual";

/**
 * Reports the scroll area's size to the virtualiser. The areas have a fixed height set by the
 * page; a browser reports it as clientHeight, and where there is no layout (tests, a hidden
 * tab) the given height stands in for it.
 */
export function observeFixedRect(height: number) {
  return (
    instance: Virtualizer<HTMLDivElement, Element>,
    callback: (rect: { width: number; height: number }) => void,
  ) => {
    const element = instance.scrollElement;
    if (element === null) return undefined;
    const report = () => callback({ width: element.clientWidth || 800, height: element.clientHeight || height });
    report();
    if (typeof ResizeObserver === "undefined") return undefined;
    const observer = new ResizeObserver(report);
    observer.observe(element);
    return () => observer.disconnect();
  };
}
