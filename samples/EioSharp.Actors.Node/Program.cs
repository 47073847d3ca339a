using System.Globalization;
using System.Net;
using System.Text.Json.Serialization;
using EioSharp;
using EioSharp.Actors.Redis;
using EioSharp.Redis;

// Usage: EioSharp.Actors.Node <redis-port> <node-id> <first-actor> <actor-count> <handler-delay-ms> <heartbeat-ttl-ms>
// Spawns actors "a{first}".."a{first+count-1}" of kind "counter" and runs until killed. Prints "READY 0" when serving.
// A counter records each handled message with HINCRBY handled <seq> 1 (before its XACK), so the test counts deliveries.
int port = int.Parse(args[0], CultureInfo.InvariantCulture);
string node = args[1];
int first = int.Parse(args[2], CultureInfo.InvariantCulture);
int count = int.Parse(args[3], CultureInfo.InvariantCulture);
var delay = TimeSpan.FromMilliseconds(int.Parse(args[4], CultureInfo.InvariantCulture));
var ttl = TimeSpan.FromMilliseconds(int.Parse(args[5], CultureInfo.InvariantCulture));

EioMain.Run(async env =>
{
    await Switch.RunAsync(async sw =>
    {
        ActorSystem? system = null;
        var counter = SampleActors.Counter(() => system!, env, delay);
        system = await ActorSystem.StartAsync(sw, env, SampleActors.Options(node, port, ttl), counter);
        for (int i = first; i < first + count; i++)
        {
            await system.SpawnAsync("a" + i.ToString(CultureInfo.InvariantCulture), "counter");
        }

        Console.WriteLine("READY 0");
        await Fiber.AwaitCancelAsync();
    });
});

/// <summary>The sample's messages and actor kind, shared with the tests and the benchmark.</summary>
public static class SampleActors
{
    public static ActorSystemOptions Options(string node, int redisPort, TimeSpan ttl) => new()
    {
        NodeId = node,
        Redis = new RedisOptions { EndPoint = new IPEndPoint(IPAddress.Loopback, redisPort) },
        HeartbeatTtl = ttl,
        Serializer = new JsonActorSerializer(SampleJson.Default),
    };

    public static ActorKind Counter(Func<ActorSystem> system, Stdenv env, TimeSpan delay) => new("counter", self =>
    {
        long handled = 0;
        return async message =>
        {
            switch (message.TypeName)
            {
                case "Work":
                    var work = message.Body<Work>();
                    if (work.Crash && message.DeliveryCount == 1)
                    {
                        throw new InvalidOperationException($"asked to crash at {work.Seq}");
                    }

                    await system().Redis.ExecuteAsync("HINCRBY", "handled", work.Seq, 1);
                    await system().Redis.ExecuteAsync("HSET", "deliveries", work.Seq, message.DeliveryCount);
                    if (delay > TimeSpan.Zero)
                    {
                        await env.MonoClock.SleepAsync(delay);
                    }

                    handled++;
                    return null;
                case "Ping":
                    return message.Reply(new Pong(system().NodeId, self.Name, handled, message.DeliveryCount, message.Id));
                default:
                    throw new InvalidOperationException("unknown message " + message.TypeName);
            }
        };
    });
}

public sealed record Work(int Seq, bool Crash = false);

public sealed record Ping(int Seq);

public sealed record Pong(string Node, string Actor, long Handled, long DeliveryCount, string MessageId);

[JsonSerializable(typeof(Work))]
[JsonSerializable(typeof(Ping))]
[JsonSerializable(typeof(Pong))]
public sealed partial class SampleJson : JsonSerializerContext;
