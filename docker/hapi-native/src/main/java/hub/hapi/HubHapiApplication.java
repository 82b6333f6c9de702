package hub.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.data.elasticsearch.ElasticsearchDataAutoConfiguration;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchClientAutoConfiguration;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * HAPI FHIR JPA server (FHIR R4, PostgreSQL) as a plain Spring Boot application: the part of
 * the official hapiproject/hapi image the hub needs, built from hapi-fhir-jpaserver-base on
 * Maven Central, which publishes no current starter.
 *
 * <p>Settings: the `hapi.fhir.*` keys of docker/hapi/application.yaml (see {@link
 * HapiFhirProperties}); the database from `spring.datasource.*`.
 */
@SpringBootApplication(
		exclude = {
			// HAPI brings these libraries along; started, they would look for servers we do not run.
			QuartzAutoConfiguration.class,
			ThymeleafAutoConfiguration.class,
			ElasticsearchClientAutoConfiguration.class,
			ElasticsearchRestClientAutoConfiguration.class,
			ElasticsearchDataAutoConfiguration.class,
		})
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	// Batch2 (reindexing after a search parameter changes) needs a message broker; this is the
	// in-memory one. It delivers no FHIR Subscriptions: the hub does that.
	SubscriptionChannelConfig.class,
})
public class HubHapiApplication {

	public static void main(String[] args) {
		SpringApplication.run(HubHapiApplication.class, args);
	}
}
