"""launch and launch_ros, as far as a launch file needs them to be run and looked at: neither is
installable here (docs/development.md), so test/test_launch_file.py runs depth.launch.py on this.

It keeps their semantics (checked against their Humble and Jazzy sources): arguments set before the
description runs, a declared default filling what was not given, declared choices checked;
conditions evaluated before an action runs, 'true'/'1' and 'false'/'0' only; a scoped GroupAction
restoring launch configurations and environment; OpaqueFunction's entities run where it stands;
substitutions performed on use; launch_ros's parameter values YAML-typed unless a ParameterValue
names a type. Instead of starting a process, a Node is recorded as `Started`. Whatever the
launch file imports from launch that is not here fails the import: add it here, with launch's
semantics. The real launch was run by hand on the same file (docs/launch.md).
"""
from __future__ import annotations

import math
import types
from dataclasses import dataclass, field

import yaml


class Context:
    def __init__(self, arguments: dict, environment: dict):
        self.launch_configurations = dict(arguments)
        self.environment = dict(environment)
        self.started, self.log, self._scopes = [], [], []


def perform(context: Context, value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Substitution):
        return value.perform(context)
    return ''.join(perform(context, part) for part in value)


class Substitution:
    def perform(self, context: Context) -> str:
        raise NotImplementedError


class LaunchConfiguration(Substitution):
    def __init__(self, variable_name, default=None):
        self.name, self.default = variable_name, default

    def perform(self, context):
        name = perform(context, self.name)
        if name in context.launch_configurations:
            return context.launch_configurations[name]
        if self.default is None:
            raise RuntimeError(f"launch configuration '{name}' does not exist")
        return perform(context, self.default)


class EnvironmentVariable(Substitution):
    def __init__(self, name, *, default_value=None):
        self.name, self.default_value = name, default_value

    def perform(self, context):
        name = perform(context, self.name)
        default = None if self.default_value is None else perform(context, self.default_value)
        value = context.environment.get(name, default)
        if value is None:
            raise RuntimeError(f"environment variable '{name}' does not exist")
        return value


class PythonExpression(Substitution):
    def __init__(self, expression):
        self.expression = expression

    def perform(self, context):
        return str(eval(perform(context, self.expression), {}, math.__dict__))


class Condition:
    def __init__(self, *, predicate=None):
        self._predicate = predicate

    def evaluate(self, context) -> bool:
        return self._predicate(context)


class IfCondition(Condition):
    def __init__(self, predicate_expression):
        super().__init__(predicate=lambda context: _truth(perform(context, predicate_expression)))


class UnlessCondition(Condition):
    def __init__(self, predicate_expression):
        super().__init__(predicate=lambda context: not _truth(perform(context, predicate_expression)))


def _truth(text: str) -> bool:
    text = text.strip().lower()
    if text not in ('true', '1', 'false', '0'):
        raise RuntimeError(f"Unable to evaluate condition expression '{text}': use true, false, 1 or 0")
    return text in ('true', '1')


class Action:
    def __init__(self, *, condition=None):
        self.condition = condition

    def execute(self, context):
        return None


class LaunchDescription(Action):
    def __init__(self, initial_entities=None):
        super().__init__()
        self.entities = list(initial_entities or [])

    def execute(self, context):
        return self.entities


class DeclareLaunchArgument(Action):
    def __init__(self, name, *, default_value=None, description=None, choices=None, **kwargs):
        super().__init__(**kwargs)
        if choices is not None and default_value is not None and default_value not in choices:
            raise RuntimeError(f'Provided default_value "{default_value}" is not in provided choices "{choices}".')
        self.name, self.default_value, self.description, self.choices = name, default_value, description, choices

    def execute(self, context):
        configurations = context.launch_configurations
        if self.name not in configurations:
            if self.default_value is None:
                raise RuntimeError(f'Required launch argument "{self.name}" was not provided.')
            configurations[self.name] = perform(context, self.default_value)
        if self.choices is not None and configurations[self.name] not in self.choices:
            raise RuntimeError(f'Argument "{self.name}" provided value "{configurations[self.name]}" is not valid. '
                               f'Valid options are: {self.choices}')


class SetEnvironmentVariable(Action):
    def __init__(self, name, value, **kwargs):
        super().__init__(**kwargs)
        self.name, self.value = name, value

    def execute(self, context):
        self.target(context)[perform(context, self.name)] = perform(context, self.value)

    @staticmethod
    def target(context) -> dict:
        return context.environment


class SetLaunchConfiguration(SetEnvironmentVariable):
    @staticmethod
    def target(context) -> dict:
        return context.launch_configurations


class LogInfo(Action):
    def __init__(self, *, msg, **kwargs):
        super().__init__(**kwargs)
        self.msg = msg

    def execute(self, context):
        context.log.append(perform(context, self.msg))


class OpaqueFunction(Action):
    def __init__(self, *, function, args=None, kwargs=None, **left_over):
        super().__init__(**left_over)
        self.function, self.args, self.kwargs = function, args or [], kwargs or {}

    def execute(self, context):
        return self.function(context, *self.args, **self.kwargs)


class _Scope(Action):
    def __init__(self, enter: bool):
        super().__init__()
        self.enter = enter

    def execute(self, context):
        if self.enter:
            context._scopes.append((dict(context.launch_configurations), dict(context.environment)))
        else:
            context.launch_configurations, context.environment = context._scopes.pop()


class GroupAction(Action):
    def __init__(self, actions, *, scoped=True, **kwargs):
        super().__init__(**kwargs)
        self.actions, self.scoped = list(actions), scoped

    def execute(self, context):
        return [_Scope(True), *self.actions, _Scope(False)] if self.scoped else self.actions


class Shutdown(Action):
    def __init__(self, *, reason='reason not given', **kwargs):
        super().__init__(**kwargs)
        self.reason = reason


class ParameterValue:
    def __init__(self, value, *, value_type=None):
        self.value, self.value_type = value, value_type

    def evaluate(self, context):
        text = perform(context, self.value)
        return self.value_type(text) if self.value_type else _yaml_value(text)


def _yaml_value(text: str):
    """launch_ros's typing of a substituted parameter value: YAML scalars, else the text."""
    if text == '':
        return ''
    value = yaml.safe_load(text)
    return value if type(value) in (bool, int, float, str) else text


def _parameter(context, value):
    if isinstance(value, ParameterValue):
        return value.evaluate(context)
    if isinstance(value, (bool, int, float)):
        return value
    return _yaml_value(perform(context, value))


@dataclass
class Started:
    """A process the launch would start, with everything substituted."""
    package: str
    executable: str
    name: str | None
    namespace: str | None
    parameters: list        # params file paths and dicts of typed values, in order
    remappings: list        # (from, to)
    arguments: list
    env: dict               # the launch's environment with the node's additional_env
    on_exit: object = None
    output: str | None = None
    extra: dict = field(default_factory=dict)


class Node(Action):
    def __init__(self, *, package, executable, name=None, namespace=None, parameters=None, remappings=None,
                 arguments=None, additional_env=None, on_exit=None, output=None, condition=None, **extra):
        super().__init__(condition=condition)
        self.kwargs = dict(package=package, executable=executable, name=name, namespace=namespace,
                           parameters=parameters or [], remappings=remappings or [], arguments=arguments or [],
                           additional_env=additional_env or {}, on_exit=on_exit, output=output, extra=extra)

    def execute(self, context):
        k = self.kwargs
        parameters = [{perform(context, key): _parameter(context, v) for key, v in item.items()}
                      if isinstance(item, dict) else perform(context, item) for item in k['parameters']]
        context.started.append(Started(
            package=perform(context, k['package']), executable=perform(context, k['executable']),
            name=None if k['name'] is None else perform(context, k['name']),
            namespace=None if k['namespace'] is None else perform(context, k['namespace']),
            parameters=parameters,
            remappings=[(perform(context, a), perform(context, b)) for a, b in k['remappings']],
            arguments=[perform(context, a) for a in k['arguments']],
            env={**context.environment, **{perform(context, a): perform(context, b)
                                            for a, b in k['additional_env'].items()}},
            on_exit=k['on_exit'], output=k['output'], extra=k['extra']))


def modules() -> dict:
    """Module name -> module, to put in sys.modules in place of launch and launch_ros."""
    def module(name, *objects):
        m = types.ModuleType(name)
        for obj in objects:
            setattr(m, obj.__name__, obj)
        return m
    return {
        'launch': module('launch', LaunchDescription, Condition, Action, Substitution),
        'launch.actions': module('launch.actions', DeclareLaunchArgument, GroupAction, LogInfo, OpaqueFunction,
                                 SetEnvironmentVariable, SetLaunchConfiguration, Shutdown),
        'launch.conditions': module('launch.conditions', IfCondition, UnlessCondition),
        'launch.substitutions': module('launch.substitutions', EnvironmentVariable, LaunchConfiguration,
                                       PythonExpression),
        'launch_ros': module('launch_ros'),
        'launch_ros.actions': module('launch_ros.actions', Node),
        'launch_ros.parameter_descriptions': module('launch_ros.parameter_descriptions', ParameterValue),
    }


def run(description: LaunchDescription, arguments: dict, environment: dict) -> Context:
    """Run a launch description as `ros2 launch ... name:=value` would, starting nothing."""
    context = Context(arguments, environment)

    def visit(entity):
        if entity.condition is not None and not entity.condition.evaluate(context):
            return
        for sub in entity.execute(context) or []:
            visit(sub)
    visit(description)
    return context
