import { BrowserRouter, Route, Routes } from "react-router";
import { Dashboard } from "../pages/Dashboard";
import { JobDetailPage } from "../pages/JobDetail";
import { Jobs } from "../pages/Jobs";
import { Login } from "../pages/Login";
import { NotFound } from "../pages/NotFound";
import { TaskDetail } from "../pages/TaskDetail";
import { Tasks } from "../pages/Tasks";
import { WorkerPage, Workers } from "../pages/Workers";
import { WorkspacePage, Workspaces } from "../pages/Workspaces";
import { Layout } from "./Layout";

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route element={<Layout />}>
          <Route index element={<Dashboard />} />
          <Route path="workspaces" element={<Workspaces />} />
          <Route path="workspaces/:ws" element={<WorkspacePage />} />
          <Route path="workspaces/:ws/tasks/:task" element={<TaskDetail />} />
          <Route path="tasks" element={<Tasks />} />
          <Route path="jobs" element={<Jobs />} />
          <Route path="jobs/:id" element={<JobDetailPage />} />
          <Route path="workers" element={<Workers />} />
          <Route path="workers/:id" element={<WorkerPage />} />
          <Route path="login" element={<Login />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
