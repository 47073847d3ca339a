using System.Reflection;
using System.Text;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>Pins the public API surface (types and member signatures), so changes to it are deliberate.</summary>
public class PublicApiTests
{
    private static readonly Assembly[] Assemblies = [typeof(Supervisor).Assembly, typeof(Hosting.SupervisorHostedService).Assembly];

    [Fact]
    public void PublicSurfaceIsPinned()
    {
        var sb = new StringBuilder();
        foreach (var type in Assemblies.SelectMany(a => a.GetExportedTypes()).OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            sb.Append(type.FullName).Append('\n');
            var members = type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(m => m is not MethodInfo { IsSpecialName: true } && !(type.IsEnum && m.Name == "value__"))
                .Where(m => !IsRecordPlumbing(type, m))
                .Select(Describe)
                .Order(StringComparer.Ordinal);
            foreach (var m in members)
            {
                sb.Append("  ").Append(m).Append('\n');
            }
        }

        Expect("""
            EioSharp.Supervision.ActorFailedException
              String Actor { get; }
              ctor(String actor, Exception inner)
            EioSharp.Supervision.Actor`2
              Boolean TryCast(TMsg message)
              ChildSpec ToChildSpec(RestartType restart = Permanent, TimeSpan? shutdownTimeout = null)
              Int32 MailboxCapacity { get; }
              Int32 PendingMessages { get; }
              String Name { get; }
              String ToString()
              Task RunAsync(ChildContext context = null)
              Task<TReply> CallAsync<TReply>(Func<Reply<TReply>, TMsg> request, TimeSpan timeout)
              ValueTask CastAsync(TMsg message)
              Void Cast(TMsg message)
              ctor(String name, ClockBase clock, Func<Task<TState>> init, Func<TState, TMsg, ValueTask<TState>> handle, Int32 mailboxCapacity = 64)
            EioSharp.Supervision.ChildContext
              Boolean IsReady { get; }
              Int32 Run { get; }
              String Id { get; }
              String SupervisorName { get; }
              String ToString()
              Switch Switch { get; }
              Void Ready()
            EioSharp.Supervision.ChildInfo
              Boolean IsRunning { get; init; }
              ChildKind Kind { get; init; }
              Int32 Runs { get; init; }
              RestartType Restart { get; init; }
              String Id { get; init; }
              String ToString()
              ctor(String Id, ChildKind Kind, RestartType Restart, Boolean IsRunning, Int32 Runs)
            EioSharp.Supervision.ChildKind
              static const ChildKind Supervisor
              static const ChildKind Worker
            EioSharp.Supervision.ChildSpec
              ChildKind Kind { get; init; }
              Func<ChildContext, Task> Start { get; init; }
              RestartType Restart { get; init; }
              String Id { get; init; }
              String ToString()
              TimeSpan ShutdownTimeout { get; init; }
              ctor(String Id, Func<ChildContext, Task> Start)
              static ChildSpec ForSupervisor(SupervisorSpec spec, MonoClock clock)
              static readonly TimeSpan DefaultWorkerShutdown
            EioSharp.Supervision.ChildStartException
              String ChildId { get; }
              ctor(String childId, Exception inner)
            EioSharp.Supervision.ChildTemplate
              ChildKind Kind { get; init; }
              RestartType Restart { get; init; }
              String IdPrefix { get; }
              String ToString()
              TimeSpan? ShutdownTimeout { get; init; }
            EioSharp.Supervision.ChildTemplate`1
              Func<ChildContext, TArg, Task> Start { get; }
              String ToString()
              ctor(String idPrefix, Func<ChildContext, TArg, Task> start)
            EioSharp.Supervision.ExitKind
              static const ExitKind Cancelled
              static const ExitKind Failed
              static const ExitKind Normal
            EioSharp.Supervision.ExitMonitor
              Boolean HasExited { get; }
              String Name { get; }
              String ToString()
              ValueTask<ExitReason> AwaitAsync()
              static ExitMonitor Fork(Switch sw, Func<Task> body, String name = null)
            EioSharp.Supervision.ExitReason
              Boolean IsFailure { get; }
              Exception Error { get; }
              ExitKind Kind { get; }
              String ToString()
              static ExitReason Cancelled(CancelledException error)
              static ExitReason FromException(Exception error)
              static ExitReason Normal { get; }
              static Task<ExitReason> CaptureAsync(Func<Task> body)
            EioSharp.Supervision.Hosting.SupervisorHostedService
              Supervisor Supervisor { get; }
              Task Completion { get; }
              Task StartAsync(CancellationToken cancellationToken)
              Task StopAsync(CancellationToken cancellationToken)
              ctor(Func<Stdenv, SupervisorSpec> buildSpec, IHostApplicationLifetime lifetime = null)
            EioSharp.Supervision.Hosting.SupervisorServiceCollectionExtensions
              static IServiceCollection AddEioSupervisor(IServiceCollection services, Func<Stdenv, SupervisorSpec> buildSpec)
            EioSharp.Supervision.MailboxFullException
              String Actor { get; }
              ctor(String actor, Int32 capacity)
            EioSharp.Supervision.Reply`1
              Boolean IsSent { get; }
              Void Fail(Exception error)
              Void Send(T value)
            EioSharp.Supervision.RestartIntensityExceededException
              String ChildId { get; }
              String Supervisor { get; }
              ctor(String supervisor, String childId, Int32 maxRestarts, TimeSpan period, Exception inner)
              static RestartIntensityExceededException FindIn(Exception error)
            EioSharp.Supervision.RestartStrategy
              static const RestartStrategy OneForAll
              static const RestartStrategy OneForOne
              static const RestartStrategy RestForOne
              static const RestartStrategy SimpleOneForOne
            EioSharp.Supervision.RestartType
              static const RestartType Permanent
              static const RestartType Temporary
              static const RestartType Transient
            EioSharp.Supervision.Supervisor
              Boolean IsFinished { get; }
              IReadOnlyList<String> AbandonedChildren { get; }
              RestartStrategy Strategy { get; }
              String Name { get; }
              String ToString()
              Task AwaitFinishedAsync()
              Task StartChildAsync(ChildSpec spec)
              Task StopAsync()
              Task<Boolean> CrashChildAsync(String id, Exception error = null)
              Task<Boolean> TerminateChildAsync(String id)
              Task<ExitMonitor> MonitorChildAsync(String id)
              Task<IReadOnlyList<ChildInfo>> WhichChildrenAsync()
              Task<String> StartChildAsync<TArg>(TArg argument)
              Void RequestStop()
              static Task RunAsync(SupervisorSpec spec, MonoClock clock, Action<Supervisor> onReady = null)
              static Task<Supervisor> StartAsync(Switch sw, SupervisorSpec spec, MonoClock clock)
            EioSharp.Supervision.SupervisorNotRunningException
              ctor(String supervisor)
            EioSharp.Supervision.SupervisorReport
              ExitReason Reason { get; init; }
              String ChildId { get; init; }
              String Supervisor { get; init; }
              String ToString()
              SupervisorReportKind Kind { get; init; }
              TimeSpan? Timeout { get; init; }
              ctor(SupervisorReportKind Kind, String Supervisor, String ChildId, ExitReason Reason = null, TimeSpan? Timeout = null)
            EioSharp.Supervision.SupervisorReportKind
              static const SupervisorReportKind Abandoned
              static const SupervisorReportKind Exited
              static const SupervisorReportKind IntensityExceeded
              static const SupervisorReportKind Restarting
              static const SupervisorReportKind StartFailed
              static const SupervisorReportKind Started
              static const SupervisorReportKind Stopped
            EioSharp.Supervision.SupervisorSpec
              Action<SupervisorReport> OnReport { get; init; }
              ChildTemplate Template { get; }
              IReadOnlyList<ChildSpec> Children { get; }
              Int32 MaxRestarts { get; init; }
              RestartStrategy Strategy { get; }
              String Name { get; init; }
              String ToString()
              TimeSpan Period { get; init; }
              ctor(String name, RestartStrategy strategy, IEnumerable<ChildSpec> children)
              static SupervisorSpec Dynamic<TArg>(String name, ChildTemplate<TArg> template)
            EioSharp.Supervision.SupervisorStartException
              String ChildId { get; }
              String Supervisor { get; }
              ctor(String supervisor, String childId, Exception inner)

            """, sb.ToString());
    }

    [Fact]
    public void ClassesAreSealedOrStatic_OrAbstractWithoutPublicConstructors()
    {
        foreach (var type in Assemblies.SelectMany(a => a.GetExportedTypes()).Where(t => t.IsClass))
        {
            Assert.True(type.IsSealed || (type.IsAbstract && type.GetConstructors().Length == 0), type.FullName);
        }
    }

    private static bool IsRecordPlumbing(Type type, MemberInfo m) =>
        type.GetMethod("<Clone>$") is not null
        && m.Name is "Equals" or "GetHashCode" or "Deconstruct" or "<Clone>$" or "PrintMembers" or "EqualityContract";

    private static string Describe(MemberInfo m) => m switch
    {
        ConstructorInfo c => $"ctor({Params(c)})",
        MethodInfo mi => $"{(mi.IsStatic ? "static " : "")}{Name(mi.ReturnType)} {mi.Name}{Generic(mi)}({Params(mi)})",
        PropertyInfo p => $"{(p.GetMethod?.IsStatic == true ? "static " : "")}{Name(p.PropertyType)} {p.Name} {{ {(p.GetMethod?.IsPublic == true ? "get; " : "")}{(p.SetMethod?.IsPublic == true ? (p.SetMethod.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.Name == "IsExternalInit") ? "init; " : "set; ") : "")}}}",
        FieldInfo f => $"{(f.IsStatic ? "static " : "")}{(f.IsLiteral ? "const " : f.IsInitOnly ? "readonly " : "")}{Name(f.FieldType)} {f.Name}",
        Type t => $"nested {t.Name}",
        _ => m.ToString()!,
    };

    private static string Generic(MethodInfo mi) => mi.IsGenericMethod ? "<" + string.Join(", ", mi.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Params(MethodBase m) => string.Join(", ", m.GetParameters().Select(p => $"{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}"));

    private static string Name(Type t)
    {
        if (t.IsGenericParameter)
        {
            return t.Name;
        }

        if (Nullable.GetUnderlyingType(t) is { } u)
        {
            return Name(u) + "?";
        }

        if (t.IsGenericType)
        {
            var n = t.Name[..t.Name.IndexOf('`')];
            return $"{n}<{string.Join(", ", t.GetGenericArguments().Select(Name))}>";
        }

        return t.Name;
    }
}
