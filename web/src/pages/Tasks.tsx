import { useMemo } from "react";
import { Link, useSearchParams } from "react-router";
import { seg } from "../api/client";
import { useApi } from "../api/useApi";
import type { TaskSummary } from "../api/types";
import { Empty, ErrorPanel, PageHeader, Spinner, StaleBanner, useTitle } from "../components/ui";

interface Folder {
  name: string;
  path: string;
  folders: Map<string, Folder>;
  tasks: TaskSummary[];
}

function newFolder(name: string, path: string): Folder {
  return { name, path, folders: new Map(), tasks: [] };
}

/** Workspace → folder segments → tasks, in the server's order (workspace, folder, name). */
export function buildTree(tasks: TaskSummary[]): Folder[] {
  const roots = new Map<string, Folder>();
  for (const task of tasks) {
    let folder = roots.get(task.workspace);
    if (folder === undefined) {
      folder = newFolder(task.workspace, task.workspace);
      roots.set(task.workspace, folder);
    }
    for (const part of (task.folder ?? "").split("/").filter((piece) => piece !== "")) {
      let child: Folder | undefined = folder.folders.get(part);
      if (child === undefined) {
        child = newFolder(part, `${folder.path}/${part}`);
        folder.folders.set(part, child);
      }
      folder = child;
    }
    folder.tasks.push(task);
  }
  return [...roots.values()];
}

export function matchesSearch(task: TaskSummary, query: string): boolean {
  const needle = query.trim().toLowerCase();
  if (needle === "") return true;
  return [task.name, task.display_name, task.description, task.folder, task.workspace].some(
    (text) => text !== null && text.toLowerCase().includes(needle),
  );
}

export function Tasks() {
  useTitle("Tasks");
  const [params, setParams] = useSearchParams();
  const query = params.get("q") ?? "";
  const tasks = useApi<TaskSummary[]>("/api/tasks", { pollMs: 30000 });
  const filtered = useMemo(() => (tasks.data ?? []).filter((task) => matchesSearch(task, query)), [tasks.data, query]);
  const tree = useMemo(() => buildTree(filtered), [filtered]);

  return (
    <>
      <PageHeader title="Tasks" subtitle="Every task of every workspace, by folder" />
      <div className="mb-4 max-w-md">
        <label htmlFor="task-search" className="mb-1 block text-sm font-medium">
          Search tasks
        </label>
        <input
          id="task-search"
          type="search"
          value={query}
          placeholder="Name, description or folder"
          onChange={(event) => {
            const next = new URLSearchParams(params);
            if (event.target.value === "") next.delete("q");
            else next.set("q", event.target.value);
            setParams(next, { replace: true });
          }}
          className="field-input"
        />
      </div>
      <StaleBanner error={tasks.data !== undefined ? tasks.error : undefined} />
      {tasks.loading ? (
        <Spinner />
      ) : tasks.data === undefined ? (
        tasks.error && <ErrorPanel error={tasks.error} onRetry={tasks.reload} what="Tasks" />
      ) : filtered.length === 0 ? (
        <Empty>{query === "" ? "No tasks are loaded." : `No task matches “${query}”.`}</Empty>
      ) : (
        <div className="rounded-xl border border-slate-200 bg-white p-2 shadow-sm">
          {tree.map((root) => (
            <FolderView key={root.path} folder={root} depth={0} />
          ))}
        </div>
      )}
    </>
  );
}

function FolderView({ folder, depth }: { folder: Folder; depth: number }) {
  const title = depth === 0 ? `Workspace ${folder.name}` : `${folder.name}/`;
  return (
    <details open className="group">
      <summary className="cursor-pointer list-none rounded-md [&::-webkit-details-marker]:hidden px-2 py-1.5 text-sm font-semibold text-slate-700 select-none hover:bg-slate-50">
        <span aria-hidden="true" className="mr-1 inline-block transition-transform group-open:rotate-90">
          ▸
        </span>
        {title}
      </summary>
      <div className="ml-4 border-l border-slate-100 pl-2">
        {[...folder.folders.values()].map((child) => (
          <FolderView key={child.path} folder={child} depth={depth + 1} />
        ))}
        <ul>
          {folder.tasks.map((task) => (
            <li key={`${task.workspace}/${task.name}`} className="rounded-md px-2 py-1.5 hover:bg-slate-50">
              <Link to={`/workspaces/${seg(task.workspace)}/tasks/${seg(task.name)}`} className="text-sm font-medium">
                {task.display_name ?? task.name}
              </Link>
              {task.display_name !== null && <span className="ml-2 font-mono text-xs text-slate-500">{task.name}</span>}
              {task.has_triggers && (
                <span className="ml-2 rounded bg-slate-100 px-1.5 text-xs text-slate-600">triggers</span>
              )}
              {task.description !== null && <p className="text-xs text-slate-600">{task.description}</p>}
            </li>
          ))}
        </ul>
      </div>
    </details>
  );
}
