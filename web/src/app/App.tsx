import { BrowserRouter, Route, Routes } from "react-router";
import { ApiKeys } from "../pages/ApiKeys";
import { Audit } from "../pages/Audit";
import { Dashboard } from "../pages/Dashboard";
import { JobDetailPage } from "../pages/JobDetail";
import { Jobs } from "../pages/Jobs";
import { Login, LoginCallback } from "../pages/Login";
import { NotFound } from "../pages/NotFound";
import { TaskDetail } from "../pages/TaskDetail";
import { Tasks } from "../pages/Tasks";
import { Users } from "../pages/Users";
import { WorkerPage, Workers } from "../pages/Workers";
import { WorkspacePage, Workspaces } from "../pages/Workspaces";
import { AuthProvider } from "./auth";
import { Layout } from "./Layout";

export function AppRoutes() {
  return (
    <Routes>
      <Route path="login" element={<Login />} />
      <Route path="login/callback" element={<LoginCallback />} />
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
        <Route path="api-keys" element={<ApiKeys />} />
        <Route path="users" element={<Users />} />
        <Route path="audit" element={<Audit />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <AuthProvider>
        <AppRoutes />
      </AuthProvider>
    </BrowserRouter>
  );
}
