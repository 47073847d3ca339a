using System.Collections;
using System.Runtime.InteropServices;
using EioSharp.Backends.Native;
using EioSharp.Fs;
using EioSharp.IO;
using EioSharp.Time;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Processes;

/// <summary>Starts child processes: <c>env.ProcessManager</c>.</summary>
/// <remarks>
/// <para>Eio: <c>Process.mgr</c> (<c>Eio.Stdenv.process_mgr</c>) with <c>spawn</c>, <c>run</c>, <c>parse_out</c> and <c>pipe</c>.</para>
/// <para><b>How</b>: children are started with <c>posix_spawn</c>/<c>posix_spawnp</c> (glibc uses <c>clone(CLONE_VM|CLONE_VFORK)</c>:
/// no copy of the .NET process is made), with file actions for the standard descriptors and <c>fchdir</c> for the
/// working directory, the signal mask emptied and every signal reset to its default (.NET ignores SIGPIPE; a child must
/// not inherit that). Every other descriptor of this process is close-on-exec, so the child gets only 0, 1 and 2.
/// Exits are detected through a pidfd: on the epoll and io_uring backends by the spawning domain's own poller, on the portable
/// backend by one reaper thread for the whole process (see <see cref="ChildProcess"/>).</para>
/// <para><b>Platform</b>: Linux only (the portable, epoll and io_uring backends); <see cref="Stdenv.ProcessManager"/> throws
/// <see cref="NotSupportedException"/> elsewhere and under the mock backend.</para>
/// </remarks>
public sealed class ProcessManager
{
    /// <summary>How long a switch that finishes waits after SIGTERM before sending SIGKILL to a child still running: 1 second.</summary>
    public static readonly TimeSpan DefaultKillGracePeriod = TimeSpan.FromSeconds(1);

    private readonly MonoClock _clock;

    internal ProcessManager(MonoClock clock)
    {
        _clock = clock;
    }

    /// <summary>Formats an argument vector for messages, quoting arguments that are empty or contain spaces, quotes or control characters.</summary>
    /// <param name="arguments">The arguments.</param>
    /// <returns>The text, e.g. <c>sh -c "exit 3"</c>.</returns>
    /// <remarks>Eio: <c>Process.pp_args</c>.</remarks>
    public static string FormatArguments(IReadOnlyList<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        return ArgumentFormat.Format(arguments);
    }

    /// <summary>Creates an OS pipe whose ends are owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The switch that closes both ends when it finishes (if not closed before).</param>
    /// <returns>The reading end and the writing end; either can be passed to <see cref="Spawn"/> without a copying fiber.</returns>
    /// <exception cref="IOException">The kernel refused (e.g. out of descriptors).</exception>
    /// <exception cref="InvalidOperationException">The switch has finished.</exception>
    /// <remarks>Eio: <c>Process.pipe ~sw mgr</c>. Both descriptors are close-on-exec: a child gets one only through <see cref="Spawn"/>.</remarks>
    public (ProcessPipeSource Source, ProcessPipeSink Sink) Pipe(Switch sw)
    {
        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var (r, w) = CreatePipe();
        ProcessPipeSource? source = null;
        try
        {
            source = new ProcessPipeSource(sw, r);
            return (source, new ProcessPipeSink(sw, w));
        }
        catch
        {
            source?.Close();
            r.Dispose();
            w.Dispose();
            throw;
        }
    }

    /// <summary>Starts a child process owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The owning switch: when it finishes while the child runs, the child gets SIGTERM, then SIGKILL after
    /// <paramref name="killGracePeriod"/>, and is reaped before the switch finishes. Copying fibers (below) run in it.</param>
    /// <param name="arguments">The argument vector; <c>arguments[0]</c> is the program name (and, without
    /// <paramref name="executable"/>, the program, searched in <c>PATH</c> when it has no <c>/</c>).</param>
    /// <param name="cwd">The child's working directory, a directory capability (null: this process's current directory).</param>
    /// <param name="stdin">What the child reads as standard input (null: inherited). A <see cref="ProcessPipeSource"/> is given
    /// to the child directly; any other flow is copied into a new pipe by a fiber in <paramref name="sw"/>, which closes
    /// the pipe at the flow's end.</param>
    /// <param name="stdout">Where the child's standard output goes (null: inherited). A <see cref="ProcessPipeSink"/> is given
    /// directly; any other sink is fed from a new pipe by a fiber in <paramref name="sw"/> until the child closes it.</param>
    /// <param name="stderr">The same for standard error.</param>
    /// <param name="environment">The child's environment as <c>NAME=value</c> entries (null: this process's environment as
    /// <see cref="Environment.GetEnvironmentVariables()"/> sees it).</param>
    /// <param name="executable">The program to run, a path used as is (null: <c>arguments[0]</c> searched in <c>PATH</c>).</param>
    /// <param name="killGracePeriod">The time between SIGTERM and SIGKILL when the switch finishes first (null:
    /// <see cref="DefaultKillGracePeriod"/>; zero: SIGKILL at once, as Eio).</param>
    /// <returns>The running child.</returns>
    /// <exception cref="ArgumentException"><paramref name="arguments"/> is empty, or an entry contains a NUL character.</exception>
    /// <exception cref="ExecutableNotFoundException">The program does not exist (ENOENT).</exception>
    /// <exception cref="ArgumentListTooLongException">The arguments and environment are too large (E2BIG).</exception>
    /// <exception cref="DirectoryNotFoundException"><paramref name="cwd"/> is not a directory.</exception>
    /// <exception cref="FsPermissionException"><paramref name="cwd"/> would leave its confining directory.</exception>
    /// <exception cref="IOException">Another spawn failure; <see cref="Exception.HResult"/> is the errno.</exception>
    /// <exception cref="InvalidOperationException">The switch has finished (no child is started), or it belongs to another domain.</exception>
    /// <exception cref="CancelledException">The switch is cancelled (no child is started).</exception>
    /// <remarks>Eio: <c>Process.spawn ~sw mgr ?cwd ?stdin ?stdout ?stderr ?env ?executable args</c>. The call does not
    /// suspend the fiber (<c>posix_spawn</c> returns once the child has called <c>exec</c>).</remarks>
    public ChildProcess Spawn(
        Switch sw,
        IReadOnlyList<string> arguments,
        EioPath? cwd = null,
        IFlowSource? stdin = null,
        IFlowSink? stdout = null,
        IFlowSink? stderr = null,
        IReadOnlyList<string>? environment = null,
        string? executable = null,
        TimeSpan? killGracePeriod = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(arguments);
        if (arguments.Count == 0)
        {
            throw new ArgumentException("The argument vector is empty (it needs at least the program name).", nameof(arguments));
        }

        var grace = killGracePeriod ?? DefaultKillGracePeriod;
        ArgumentOutOfRangeException.ThrowIfLessThan(grace, TimeSpan.Zero, nameof(killGracePeriod));
        if (sw.IsFinished)
        {
            throw new InvalidOperationException($"{sw} has finished: no process can be attached to it.");
        }

        sw.Check();
        var args = arguments.ToArray();
        var env = environment?.ToArray() ?? CurrentEnvironment();

        // Child-side descriptors to close in this process once the child has them, handles to release, copy jobs to fork.
        var childEnds = new List<SafeHandle>();
        var refs = new List<SafeHandle>();
        var copies = new List<Func<Task>>();
        var parentEnds = new List<ProcessPipeEnd>();
        DirectoryHandle? dir = null;
        int[] fds = [-1, -1, -1];
        try
        {
            if (stdin is not null)
            {
                if (stdin is ProcessPipeSource p)
                {
                    fds[0] = AddRef(p.Handle, refs);
                }
                else
                {
                    var (r, w) = CreatePipe();
                    childEnds.Add(r);
                    fds[0] = AddRef(r, refs);
                    var sink = new ProcessPipeSink(sw, w);
                    parentEnds.Add(sink);
                    copies.Add(async () =>
                    {
                        try
                        {
                            await stdin.CopyToAsync(sink);
                        }
                        finally
                        {
                            sink.Close();
                        }
                    });
                }
            }

            fds[1] = Output(sw, stdout, childEnds, refs, copies, parentEnds);
            fds[2] = Output(sw, stderr, childEnds, refs, copies, parentEnds);
            int cwdFd = -1;
            if (cwd is not null)
            {
                dir = NativeFs.OpenSubdirectory(cwd.Directory.Handle, cwd.RelativePath);
                if (dir.IsPortable)
                {
                    // The portable filesystem layer (EioFileSystem.Portable): the directory was resolved (and confined) by path; fchdir needs a descriptor.
                    var portable = dir;
                    dir = null;
                    portable.Dispose();
                    dir = new DirectoryHandle(
                        new SafeDirectoryFd(NativeFs.OpenDirectoryFd(LinuxInterop.AtFdCwd, portable.PortableRoot!)), portable.DisplayPath, PathResolution.Beneath);
                }

                cwdFd = AddRef(dir.Fd, refs);
            }

            string file = executable ?? args[0];
            int error = NativeSpawn(file, search: executable is null, args, env, fds, cwdFd, out int pid);
            if (error != 0)
            {
                throw error switch
                {
                    ProcessNative.ENOENT => new ExecutableNotFoundException(file, args),
                    ProcessNative.E2BIG => new ArgumentListTooLongException(args),
                    ProcessNative.EACCES => new UnauthorizedAccessException($"Permission denied running {ArgumentFormat.Format(args)} (EACCES)."),
                    _ => new IOException($"posix_spawn failed (errno {error}), running command: {ArgumentFormat.Format(args)}", error),
                };
            }

            int pidfd = ChildReaper.ForceFallback ? -1 : ProcessNative.PidfdOpen(pid);
            var child = new ChildProcess(pid, pidfd < 0 ? -1 : pidfd, args);
            if (!(Domain.Current?.Poller is IReadyWatcher watcher && child.TryWatchOn(watcher)))
            {
                ChildReaper.Watch(child);
            }

            sw.OnRelease(() => child.TerminateAsync(_clock, grace));
            foreach (var copy in copies)
            {
                Fiber.Fork(sw, copy);
            }

            parentEnds.Clear();
            return child;
        }
        finally
        {
            foreach (var h in refs)
            {
                h.DangerousRelease();
            }

            foreach (var h in childEnds)
            {
                h.Dispose();
            }

            foreach (var e in parentEnds)
            {
                e.Close();
            }

            dir?.Dispose();
        }
    }

    /// <summary>Runs a command to completion: <see cref="Spawn"/> then <see cref="ChildProcess.AwaitSuccessAsync"/> in a new switch.</summary>
    /// <param name="arguments">The argument vector (as for <see cref="Spawn"/>).</param>
    /// <param name="cwd">The working directory (null: inherited).</param>
    /// <param name="stdin">Standard input (null: inherited).</param>
    /// <param name="stdout">Standard output (null: inherited).</param>
    /// <param name="stderr">Standard error (null: inherited).</param>
    /// <param name="environment">The environment (null: this process's).</param>
    /// <param name="executable">The program path (null: <c>arguments[0]</c> searched in <c>PATH</c>).</param>
    /// <returns>A task that completes when the child has exited with code 0 and any copying fibers have finished.</returns>
    /// <exception cref="ProcessExitException">The child ended with another status; the exception carries the status and the
    /// arguments, and its message reads <c>Child_error Exited (code 3), running command: sh -c "exit 3"</c>.</exception>
    /// <exception cref="ExecutableNotFoundException">The program does not exist.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled; the child is then terminated (SIGTERM, then SIGKILL
    /// after <see cref="DefaultKillGracePeriod"/>) and reaped before this completes.</exception>
    /// <remarks>Eio: <c>Process.run</c>.</remarks>
    public Task RunAsync(
        IReadOnlyList<string> arguments,
        EioPath? cwd = null,
        IFlowSource? stdin = null,
        IFlowSink? stdout = null,
        IFlowSink? stderr = null,
        IReadOnlyList<string>? environment = null,
        string? executable = null) =>
        Switch.RunAsync(
            async sw =>
            {
                var child = Spawn(sw, arguments, cwd, stdin, stdout, stderr, environment, executable);
                await child.AwaitSuccessAsync();
            },
            "process");

    /// <summary>Runs a command and parses its standard output with <paramref name="parser"/>, which must consume all of it.</summary>
    /// <typeparam name="T">The parsed value's type.</typeparam>
    /// <param name="parser">Reads the value (e.g. <c>r =&gt; r.TakeAllStringAsync()</c> or <c>r =&gt; r.ReadLineAsync()</c>).</param>
    /// <param name="arguments">The argument vector.</param>
    /// <param name="cwd">The working directory (null: inherited).</param>
    /// <param name="stdin">Standard input (null: inherited).</param>
    /// <param name="stderr">Standard error (null: inherited).</param>
    /// <param name="environment">The environment (null: this process's).</param>
    /// <param name="executable">The program path (null: <c>arguments[0]</c> searched in <c>PATH</c>).</param>
    /// <param name="maxSize">The parse buffer's limit in bytes (default unlimited).</param>
    /// <returns>The parsed value, once the child has exited with code 0.</returns>
    /// <exception cref="FormatException">The parser failed or left output unread (checked before the exit status, as Eio).</exception>
    /// <exception cref="ProcessExitException">The child ended with another status than <c>Exited 0</c>.</exception>
    /// <exception cref="ExecutableNotFoundException">The program does not exist.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled (the child is terminated and reaped).</exception>
    /// <remarks>Eio: <c>Process.parse_out</c>.</remarks>
    public Task<T> ParseOutputAsync<T>(
        Func<BufferedReader, ValueTask<T>> parser,
        IReadOnlyList<string> arguments,
        EioPath? cwd = null,
        IFlowSource? stdin = null,
        IFlowSink? stderr = null,
        IReadOnlyList<string>? environment = null,
        string? executable = null,
        int maxSize = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(parser);
        return Switch.RunAsync(
            async sw =>
            {
                var (r, w) = Pipe(sw);
                ChildProcess child;
                try
                {
                    child = Spawn(sw, arguments, cwd, stdin, w, stderr, environment, executable);
                }
                finally
                {
                    w.Close();
                }

                var result = await BufferedReader.ParseAsync(r, parser, maxSize);
                r.Close();
                if (!result.IsSuccess)
                {
                    throw new FormatException($"{result.Error}, running command: {ArgumentFormat.Format(child.Arguments)}");
                }

                await child.AwaitSuccessAsync();
                return result.Value;
            },
            "process");
    }

    private static int Output(Switch sw, IFlowSink? sink, List<SafeHandle> childEnds, List<SafeHandle> refs, List<Func<Task>> copies, List<ProcessPipeEnd> parentEnds)
    {
        if (sink is null)
        {
            return -1;
        }

        if (sink is ProcessPipeSink p)
        {
            return AddRef(p.Handle, refs);
        }

        var (r, w) = CreatePipe();
        childEnds.Add(w);
        int fd = AddRef(w, refs);
        var source = new ProcessPipeSource(sw, r);
        parentEnds.Add(source);
        copies.Add(async () =>
        {
            try
            {
                await source.CopyToAsync(sink);
            }
            finally
            {
                source.Close();
            }
        });
        return fd;
    }

    private static int AddRef(SafeHandle handle, List<SafeHandle> refs)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        refs.Add(handle);
        return (int)handle.DangerousGetHandle();
    }

    private static unsafe (SafePipeHandle Read, SafePipeHandle Write) CreatePipe()
    {
        int* fds = stackalloc int[2];
        if (ProcessNative.pipe2(fds, ProcessNative.O_CLOEXEC) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"pipe2 failed (errno {errno})", errno);
        }

        return (new SafePipeHandle(fds[0], ownsHandle: true), new SafePipeHandle(fds[1], ownsHandle: true));
    }

    private static string[] CurrentEnvironment()
    {
        var vars = Environment.GetEnvironmentVariables();
        var env = new string[vars.Count];
        int i = 0;
        foreach (DictionaryEntry e in vars)
        {
            env[i++] = $"{e.Key}={e.Value}";
        }

        return env;
    }

    private static unsafe int NativeSpawn(string file, bool search, string[] args, string[] env, int[] fds, int cwdFd, out int pid)
    {
        void* actions = NativeMemory.AllocZeroed(ProcessNative.FileActionsSize);
        void* attr = NativeMemory.AllocZeroed(ProcessNative.AttrSize);
        void* set = NativeMemory.AllocZeroed(ProcessNative.SigSetSize);
        byte* path = null;
        byte** argv = null;
        byte** envp = null;
        bool actionsInit = false;
        bool attrInit = false;
        try
        {
            path = ProcessNative.CString(file);
            argv = ProcessNative.StringArray(args);
            envp = ProcessNative.StringArray(env);
            Check(ProcessNative.posix_spawn_file_actions_init(actions));
            actionsInit = true;
            for (int target = 0; target < 3; target++)
            {
                if (fds[target] >= 0)
                {
                    Check(ProcessNative.posix_spawn_file_actions_adddup2(actions, fds[target], target));
                }
            }

            if (cwdFd >= 0)
            {
                Check(ProcessNative.posix_spawn_file_actions_addfchdir_np(actions, cwdFd));
            }

            Check(ProcessNative.posix_spawnattr_init(attr));
            attrInit = true;
            ProcessNative.sigemptyset(set);
            Check(ProcessNative.posix_spawnattr_setsigmask(attr, set));
            for (int sig = 1; sig < 32; sig++)
            {
                if (sig != UnixSignal.Kill && sig != UnixSignal.Stop)
                {
                    ProcessNative.sigaddset(set, sig);
                }
            }

            Check(ProcessNative.posix_spawnattr_setsigdefault(attr, set));
            Check(ProcessNative.posix_spawnattr_setflags(attr, ProcessNative.POSIX_SPAWN_SETSIGDEF | ProcessNative.POSIX_SPAWN_SETSIGMASK));
            int p;
            int r = search
                ? ProcessNative.posix_spawnp(&p, path, actions, attr, argv, envp)
                : ProcessNative.posix_spawn(&p, path, actions, attr, argv, envp);
            pid = r == 0 ? p : 0;
            return r;
        }
        finally
        {
            if (actionsInit)
            {
                ProcessNative.posix_spawn_file_actions_destroy(actions);
            }

            if (attrInit)
            {
                ProcessNative.posix_spawnattr_destroy(attr);
            }

            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            NativeMemory.Free(set);
            NativeMemory.Free(path);
            NativeMemory.Free(argv);
            NativeMemory.Free(envp);
        }
    }

    private static void Check(int error)
    {
        if (error != 0)
        {
            throw new IOException($"posix_spawn setup failed (error {error})", error);
        }
    }
}
