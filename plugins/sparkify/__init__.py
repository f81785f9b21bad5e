"""Sparkify warehouse operators: stage JSON, load the star schema, check it."""

from sparkify.data_quality import DataQualityOperator
from sparkify.load_dimension import LoadDimensionOperator
from sparkify.load_fact import LoadFactOperator
from sparkify.stage_to_redshift import StageToRedshiftOperator

__all__ = ["DataQualityOperator", "LoadDimensionOperator", "LoadFactOperator", "StageToRedshiftOperator"]
