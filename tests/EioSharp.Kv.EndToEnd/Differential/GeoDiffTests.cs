using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Geo commands, differential against redis-server (see <see cref="DiffRunner"/>): scores (52-bit geohashes),
/// distances, coordinates as Redis prints them, search order and STORE results.</summary>
/// <remarks>Every member has its own coordinates (one of two per member, so GEOADD also updates), so that no two
/// members tie on distance: Redis sorts with an unstable partial quicksort when COUNT cuts the result, and ties could
/// come out in either order.</remarks>
public sealed class GeoDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Geo_matches_redis(int seed) =>
        DiffRunner.Run(servers, "geo", seed, 10_000, Next, compareEncoding: ZSetDiffTests.KvHasObjectCommand(servers));

    private static readonly (double Lon, double Lat)[] Centers = [(13.36, 38.11), (15.08, 37.50), (-0.12, 51.5), (179.9, 0.5), (-179.9, -0.5), (2.35, 84.9), (-70.6, -33.4), (0, 0)];

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string MemberName(DiffContext c) => "p" + c.Int(0, 40);

    // Member pN, variant v: a fixed point near one of the centers.
    private static (string Lon, string Lat) Coordinates(string member, int variant)
    {
        int n = int.Parse(member.AsSpan(1), CultureInfo.InvariantCulture);
        var (lon, lat) = Centers[(n + variant) % Centers.Length];
        double dLon = ((n * 7919 + variant * 104729) % 2000 - 1000) / 1000.0 * 1.7;
        double dLat = ((n * 6151 + variant * 15485863) % 2000 - 1000) / 1000.0 * 0.9;
        lon = Math.Clamp(lon + dLon, -180, 180);
        lat = Math.Clamp(lat + dLat, -85.05, 85.05);
        return (F(Math.Round(lon, 6)), F(Math.Round(lat, 6)));
    }

    private static string GeoKey(DiffContext c) => c.Chance(0.1) ? c.Key() : "g" + c.Int(0, 3);

    private static string Unit(DiffContext c) => c.Chance(0.03) ? c.Pick("yd", "") : c.Pick("m", "km", "mi", "ft", "KM", "M");

    private static string[] From(DiffContext c)
    {
        if (c.Chance(0.5)) return ["FROMMEMBER", MemberName(c)];
        var (lon, lat) = Centers[c.Int(0, Centers.Length)];
        if (c.Chance(0.03)) return ["FROMLONLAT", c.Pick("x", "200", "181"), "10"];
        return ["FROMLONLAT", F(Math.Round(lon + (c.Int(-100, 100) / 100.0), 3)), F(Math.Round(Math.Clamp(lat + c.Int(-100, 100) / 100.0, -85, 85), 3))];
    }

    private static string Radius(DiffContext c) => c.Chance(0.03) ? c.Pick("x", "-1") : c.Pick("0", "1", "10", "50", "100", "200", "500", "1000", "5000", "20000", "0.5");

    private static string[] By(DiffContext c) => c.Chance(0.6)
        ? ["BYRADIUS", Radius(c), Unit(c)]
        : ["BYBOX", Radius(c), c.Chance(0.03) ? "x" : c.Pick("1", "10", "100", "400", "3000"), Unit(c)];

    private static List<string> Options(DiffContext c, bool store)
    {
        var o = new List<string>();
        if (!store || c.Chance(0.03))
        {
            if (c.Chance(0.4)) o.Add("WITHDIST");
            if (c.Chance(0.3)) o.Add("WITHCOORD");
            if (c.Chance(0.3)) o.Add("WITHHASH");
        }
        if (c.Chance(0.5)) o.Add(c.Pick("ASC", "DESC"));
        if (c.Chance(0.4))
        {
            o.AddRange(["COUNT", c.IntArg(0, 6)]);
            if (c.Chance(0.3)) o.Add("ANY");
        }
        else if (c.Chance(0.03))
        {
            o.Add("ANY");
        }
        return o;
    }

    private static DiffCommand Next(DiffContext c)
    {
        string key = GeoKey(c);
        switch (c.Int(0, 22))
        {
            case 0: return c.Generic() is var g && g[0] == "COPY" ? new[] { "DEL", key } : g; // COPY: another branch adds it
            case 1 or 2 or 3 or 4:
                {
                    var args = new List<string> { "GEOADD", key };
                    if (c.Chance(0.2)) args.Add(c.Pick("NX", "XX", "CH"));
                    if (c.Chance(0.05)) args.Add(c.Pick("NX", "XX", "CH"));
                    int n = c.Int(1, 4);
                    for (int i = 0; i < n; i++)
                    {
                        string m = MemberName(c);
                        var (lon, lat) = Coordinates(m, c.Int(0, 2));
                        if (c.Chance(0.02)) lon = c.Pick("181", "x", "-180.5");
                        if (c.Chance(0.02)) lat = c.Pick("85.06", "-90", "y");
                        args.AddRange([lon, lat, m]);
                    }
                    if (c.Chance(0.02)) args.RemoveAt(args.Count - 1);
                    return args.ToArray();
                }
            case 5 or 6:
                {
                    var args = new List<string> { "GEODIST", key, MemberName(c), MemberName(c) };
                    if (c.Chance(0.7)) args.Add(Unit(c));
                    if (c.Chance(0.02)) args.Add("x");
                    return args.ToArray();
                }
            case 7: return new[] { "GEOHASH", key, MemberName(c), MemberName(c), MemberName(c) };
            case 8: return new[] { "GEOPOS", key, MemberName(c), MemberName(c) };
            case 9 or 10 or 11 or 12:
                {
                    var args = new List<string> { "GEOSEARCH", key };
                    var parts = new List<string[]> { From(c), By(c), Options(c, store: false).ToArray() };
                    if (c.Chance(0.2)) parts.Reverse();
                    foreach (string[] p in parts) if (!c.Chance(0.02)) args.AddRange(p);
                    return args.ToArray();
                }
            case 13 or 14:
                {
                    var args = new List<string> { "GEOSEARCHSTORE", c.Pick("g0", "g1", "g2", "d0", "d1"), key };
                    args.AddRange(From(c));
                    args.AddRange(By(c));
                    args.AddRange(Options(c, store: true));
                    if (c.Chance(0.4)) args.Add("STOREDIST");
                    return args.ToArray();
                }
            case 15 or 16:
                {
                    var (lon, lat) = Coordinates(MemberName(c), c.Int(0, 2));
                    var args = new List<string> { c.Pick("GEORADIUS", "GEORADIUS_RO"), key, lon, lat, Radius(c), Unit(c) };
                    args.AddRange(Options(c, store: false));
                    if (args[0] == "GEORADIUS" && c.Chance(0.3)) args.AddRange([c.Pick("STORE", "STOREDIST"), c.Pick("d0", "d1")]);
                    return args.ToArray();
                }
            case 17 or 18:
                {
                    var args = new List<string> { c.Pick("GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"), key, MemberName(c), Radius(c), Unit(c) };
                    args.AddRange(Options(c, store: false));
                    if (args[0] == "GEORADIUSBYMEMBER" && c.Chance(0.3))
                    {
                        args.RemoveAll(a => a is "WITHDIST" or "WITHCOORD" or "WITHHASH");
                        args.AddRange([c.Pick("STORE", "STOREDIST"), c.Pick("d0", "d1")]);
                    }
                    return args.ToArray();
                }
            case 19: return new[] { "ZRANGE", c.Pick("d0", "d1", "g0"), "0", "-1", "WITHSCORES" };
            case 20: return new[] { "ZREM", key, MemberName(c) };
            default: return new[] { "ZADD", key, c.Pick("1", "-5", "4503599627370496", "1e300"), MemberName(c) };
        }
    }
}
