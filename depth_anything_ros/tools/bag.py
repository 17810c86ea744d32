"""bag: depth for an image topic of a rosbag2, written as a new rosbag2 (no ROS install needed)."""
from __future__ import annotations

import sys

HELP = ('run the node\'s processing on every image of a rosbag2 topic (sensor_msgs/Image or '
        'CompressedImage; sqlite3 or mcap) and write a new bag with the node\'s outputs (/depth 32FC1, '
        '/depth/colorized bgr8; with metres /depth/mm and /depth/points on request; DA3\'s /depth/confidence '
        'and /depth/sky on request), the input stamps and headers, and every CameraInfo topic')


def add_arguments(parser):
    from ..tool_support.bag_io import DISTROS, STORAGES
    from ..core.params import in_groups
    from ..tool_support.options import add_param_options
    parser.add_argument('bag', help='input rosbag2 (its directory, or an .mcap/.db3 file)')
    parser.add_argument('--topic', required=True, help='image topic to run on, e.g. /camera/image_raw')
    parser.add_argument('--out', required=True, help='output bag directory (must not exist)')
    parser.add_argument('--storage', default='sqlite3', choices=STORAGES, help='output storage (default sqlite3)')
    parser.add_argument('--ros-distro', default='humble', choices=DISTROS,
                        help='message definitions recorded in the output bag (default humble, as on the S100)')
    parser.add_argument('--depth-topic', default='/depth',
                        help='output depth topic; the others are <depth-topic>/colorized, /mm, /points, /relative, '
                             '/confidence, /sky')
    parser.add_argument('--reference-topic', help="metric_reference 'depth_image' or 'points': the bag's "
                                                  'reference topic (the node\'s reference/depth or reference/points)')
    add_param_options(parser, in_groups('engine', 'recipe', 'depth', 'color', 'smoothing', 'metric', 'outputs'))


def run(args) -> int:
    from ..core.output_topics import requested_outputs
    from ..tool_support.bag_io import BagError, image_topics, process_bag
    from ..tool_support.errors import CliError
    from ..tool_support.files import progress
    from ..tool_support.options import processor_from_args
    try:
        import rosbags  # noqa: F401
    except ImportError as exc:
        raise CliError('the bag tool needs the rosbags package: pip install rosbags') from exc
    wanted = requested_outputs(vars(args))
    try:
        # Check the bag and topic before the (slow) model load.
        topics = image_topics(args.bag)
        if args.topic not in topics:
            listed = ', '.join(f'{t} ({m})' for t, m in sorted(topics.items())) or 'none'
            raise CliError(f"topic '{args.topic}' is not an image topic of '{args.bag}'; its image topics: {listed}")
        processor = processor_from_args(args)
        print(f'model: {processor.estimator.engine.describe()}; {processor.meaning()}')
        summary = process_bag(args.bag, args.out, args.topic, processor, args.storage, args.ros_distro,
                              args.depth_topic, wanted, args.reference_topic,
                              progress=lambda it, total: progress(it, total=total, desc='bag', unit='msg'))
    except BagError as exc:
        raise CliError(str(exc)) from exc
    for reason, count in {**summary.skipped, **summary.outputs_skipped}.items():
        print(f'skipped {count} x {reason}', file=sys.stderr)
    topics_out = ', '.join(summary.topics)
    print(f"wrote '{args.out}' ({args.storage}): {summary.images} depth frames from {args.topic} "
          f'({summary.input_type}), {summary.camera_info} camera_info messages; topics {topics_out}')
    return 0 if summary.images or not summary.skipped else 1
