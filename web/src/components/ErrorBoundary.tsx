// Catches a render error (or a lazily loaded chunk that failed to download, say after a server
// upgrade) so one broken part shows a message instead of a blank page.

import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** What failed, for the message ("the step graph"). */
  what: string;
  children: ReactNode;
  /** Changing it clears a caught error (e.g. the route). */
  resetKey?: string;
}

interface State {
  error: Error | null;
  resetKey: string | undefined;
}

export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null, resetKey: this.props.resetKey };

  static getDerivedStateFromError(error: Error): Partial<State> {
    return { error };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.resetKey ? { error: null, resetKey: props.resetKey } : null;
  }

  componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`Strøm UI: ${this.props.what} failed`, error, info.componentStack);
  }

  render(): ReactNode {
    if (this.state.error === null) return this.props.children;
    return (
      <div role="alert" className="my-4 rounded-lg border border-red-200 bg-red-50 p-4 text-sm text-red-900">
        <p className="font-semibold">Could not show {this.props.what}</p>
        <p className="mt-1 break-words">{this.state.error.message}</p>
        <button type="button" className="btn-secondary mt-3" onClick={() => window.location.reload()}>
          Reload the page
        </button>
      </div>
    );
  }
}
