import { BrowserRouter, Route, Routes } from "react-router";
import { Layout } from "./Layout";

function Placeholder({ title }: { title: string }) {
  return <h1 className="text-2xl font-semibold">{title}</h1>;
}

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route element={<Layout />}>
          <Route index element={<Placeholder title="Dashboard" />} />
          <Route path="workspaces" element={<Placeholder title="Workspaces" />} />
          <Route path="workspaces/:ws" element={<Placeholder title="Workspace" />} />
          <Route path="workspaces/:ws/tasks/:task" element={<Placeholder title="Task" />} />
          <Route path="tasks" element={<Placeholder title="Tasks" />} />
          <Route path="jobs" element={<Placeholder title="Jobs" />} />
          <Route path="jobs/:id" element={<Placeholder title="Job" />} />
          <Route path="workers" element={<Placeholder title="Workers" />} />
          <Route path="workers/:id" element={<Placeholder title="Worker" />} />
          <Route path="*" element={<Placeholder title="Page not found" />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
